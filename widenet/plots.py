"""Theory-versus-experiment figures (matplotlib): each function saves one PNG.

Figures are drawn on `matplotlib.figure.Figure` objects directly, without pyplot, so importing
widenet never selects or changes the user's matplotlib backend (a notebook keeps its own).
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["curves", "rate", "heatmap"]

_THEORY_STYLE = {"lw": 2.0, "alpha": 0.9}
_EXPERIMENT_STYLE = {"marker": "o", "ms": 3, "lw": 0.8, "alpha": 0.85}


def _label(ax, panel):
    ax.set_xlabel(panel.get("xlabel", ""))
    ax.set_ylabel(panel.get("ylabel", ""))
    ax.set_title(panel.get("title", ""))


def _save(fig, path, title):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _check_panels(panels):
    if not isinstance(panels, (list, tuple)) or not panels or not all(isinstance(p, dict) for p in panels):
        raise ValueError(f"`panels` must be a non-empty list of dicts; got {panels!r:.80}")


def curves(path, panels, *, title=None, width=6.0):
    """Panels of curves: `panels` is a list of dicts with keys
    `title`, `xlabel`, `ylabel`, `xscale`/`yscale` (optional), `theory` and `experiment`: lists of
    (label, x, y), and `vlines`/`hlines`: lists of (label, value)."""
    _check_panels(panels)
    fig = Figure(figsize=(width * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, x, y in panel.get("theory", []):
            ax.plot(x, y, label=label, **_THEORY_STYLE)
        for label, x, y in panel.get("experiment", []):
            ax.plot(x, y, label=label, **_EXPERIMENT_STYLE)
        for label, value in panel.get("vlines", []):
            ax.axvline(value, ls="--", color="gray", lw=1, label=label)
        for label, value in panel.get("hlines", []):
            ax.axhline(value, ls=":", color="k", lw=1, label=label)
        ax.set_xscale(panel.get("xscale", "linear"))
        ax.set_yscale(panel.get("yscale", "linear"))
        _label(ax, panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, title)


def rate(path, x, y, *, xlabel, ylabel, slope, title=None, reference=None):
    """Log-log points with their fitted slope (and an optional reference slope through the first point)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"`x` and `y` must be 1-D of equal length >= 2; got shapes {x.shape} and {y.shape}")
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    ax.loglog(x, y, "o", label="measured")
    xs = np.geomspace(x.min(), x.max(), 50)
    usable = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if usable.sum() >= 2 and np.isfinite(slope):
        coef = np.polyfit(np.log(x[usable]), np.log(y[usable]), 1)
        ax.loglog(xs, np.exp(np.polyval(coef, np.log(xs))), "-", label=f"fit: slope {slope:.2f}")
    if reference is not None:
        ax.loglog(xs, y[0] * (xs / x[0]) ** reference, ":", color="gray", label=f"slope {reference}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path, None)


def heatmap(path, panels, *, title=None, width=5.5):
    """Panels of values on a grid: `panels` is a list of dicts with keys `title`, `values` (ny, nx),
    `x` and `y` (tick labels), `xlabel`, `ylabel`, `label` (colour bar), optional `fmt` for the
    annotation of each cell and `marks`: a list of (ix, iy) cells to outline."""
    _check_panels(panels)
    fig = Figure(figsize=(width * len(panels), 4.4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        values = np.asarray(panel["values"], dtype=float)
        image = ax.imshow(values, origin="lower", aspect="auto", cmap=panel.get("cmap", "viridis"))
        fig.colorbar(image, ax=ax, label=panel.get("label", ""))
        ax.set_xticks(range(len(panel["x"])), [str(v) for v in panel["x"]])
        ax.set_yticks(range(len(panel["y"])), [str(v) for v in panel["y"]])
        fmt = panel.get("fmt", "{:.2f}")
        middle = np.nanmean(values)
        for iy, ix in np.ndindex(values.shape):
            color = "k" if values[iy, ix] > middle else "w"
            ax.text(ix, iy, fmt.format(values[iy, ix]), ha="center", va="center", fontsize=7, color=color)
        for ix, iy in panel.get("marks", []):
            ax.add_patch(Rectangle((ix - 0.5, iy - 0.5), 1, 1, fill=False, ec="r", lw=2))
        _label(ax, panel)
    return _save(fig, path, title)
