"""Theory-versus-experiment figures (matplotlib): each function saves one PNG.

Figures are drawn on `matplotlib.figure.Figure` objects directly, without pyplot, so importing
widenet never selects or changes the user's matplotlib backend (a notebook keeps its own).
"""

import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["curves", "rate", "heatmap", "comparison", "width_colour"]

_THEORY_STYLE = {"lw": 2.0, "alpha": 0.9}
_EXPERIMENT_STYLE = {"marker": "o", "ms": 3, "lw": 0.8, "alpha": 0.85}


def _label(ax, panel):
    ax.set_xlabel(panel.get("xlabel", ""))
    ax.set_ylabel(panel.get("ylabel", ""))
    ax.set_title(panel.get("title", ""))


def _clean_log_ticks(ax):
    """Log axes without colliding minor labels ("3×10²4×10²"): minor ticks at 2 and 5 times each
    decade, labelled only when the axis spans under two decades (otherwise the decades suffice)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    for axis, scale, limits in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log" or min(limits) <= 0:
            continue
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        decades = np.log10(max(limits) / min(limits))
        axis.set_minor_formatter(
            LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf))
            if decades < 2
            else NullFormatter()
        )


def _save(fig, path, title):
    if title:
        fig.suptitle(title)
    for ax in fig.axes:
        _clean_log_ticks(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _check_panels(panels):
    if not isinstance(panels, (list, tuple)) or not panels or not all(isinstance(p, dict) for p in panels):
        raise ValueError(f"`panels` must be a non-empty list of dicts; got {panels!r:.80}")


def curves(path, panels, *, title=None, width=6.0):
    """Panels of curves: `panels` is a list of dicts with keys
    `title`, `xlabel`, `ylabel`, `xscale`/`yscale` (optional), `theory` and `experiment`: lists of
    (label, x, y) or (label, x, y, {matplotlib style}) (e.g. `{"color": width_colour(w)}`), and
    `vlines`/`hlines`: lists of (label, value) or (label, value, {style}). Theory lines are drawn
    above the experiment."""
    _check_panels(panels)
    fig = Figure(figsize=(width * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, x, y, *style in panel.get("experiment", []):
            ax.plot(x, y, label=label, **{**_EXPERIMENT_STYLE, "zorder": 2, **(style[0] if style else {})})
        for label, x, y, *style in panel.get("theory", []):  # drawn above the data
            ax.plot(x, y, label=label, **{**_THEORY_STYLE, "zorder": 3, **(style[0] if style else {})})
        for label, value, *style in panel.get("vlines", []):
            ax.axvline(value, **{"ls": "--", "color": "gray", "lw": 1, "label": label, **(style[0] if style else {})})
        for label, value, *style in panel.get("hlines", []):
            ax.axhline(value, **{"ls": ":", "color": "k", "lw": 1, "label": label, **(style[0] if style else {})})
        ax.set_xscale(panel.get("xscale", "linear"))
        ax.set_yscale(panel.get("yscale", "linear"))
        _label(ax, panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, title)


def rate(path, x, y, *, xlabel, ylabel, slope=None, title=None, reference=None, interval=None):
    """Log-log points with their fitted slope and the slope the theory predicts.

    `y` is (len(x),) or (seeds, len(x)); with seeds the points are the seed means with 95%
    t-interval error bars (each seed faint behind them) and the fitted line has the mean per-seed
    slope (`harness.rate_check`'s statistic), labelled with its `interval` when given. `reference`:
    the predicted exponent, drawn through the first mean as a dotted line. Widths take their fixed
    colours when `xlabel` is "width".
    """
    from .harness import fit_slope, seed_interval

    x, y = np.asarray(x, float), np.asarray(y, float)
    by_seed = y if y.ndim == 2 else y[None, :]
    if x.ndim != 1 or by_seed.ndim != 2 or by_seed.shape[1] != x.size or x.size < 2:
        raise ValueError(f"`x` must be 1-D of length >= 2 and `y` (len(x),) or (seeds, len(x)); got {x.shape}, {y.shape}")
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    if by_seed.shape[0] > 1 and np.all(np.isfinite(by_seed)):
        mean, lo, hi = seed_interval(by_seed)
    else:  # one seed, or undefined values: points without error bars
        with warnings.catch_warnings():  # a width with no finite value gives nan, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.where(np.isfinite(by_seed), by_seed, np.nan), axis=0)
        lo = hi = mean
    if by_seed.shape[0] > 1 and np.all(np.isfinite(by_seed)):
        for row in by_seed:
            ax.loglog(x, row, ".", color="0.6", alpha=0.6, ms=4, zorder=1)
        err = np.vstack([mean - np.maximum(lo, mean * 1e-3), hi - mean])
        ax.errorbar(x, mean, yerr=err, fmt="o", color="C0", capsize=3, zorder=3,
                    label=f"measured: mean of {by_seed.shape[0]} seeds, 95% interval")  # fmt: skip
    else:
        ax.loglog(x, mean, "o", color="C0", zorder=3, label="measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = np.geomspace(x.min(), x.max(), 50)
    usable = np.isfinite(mean) & (mean > 0)
    if slope is None and usable.sum() >= 2:
        slope = fit_slope(x[usable], mean[usable])
    if slope is not None and np.isfinite(slope) and usable.sum() >= 2:
        anchor = np.exp(np.mean(np.log(mean[usable])) - slope * np.mean(np.log(x[usable])))
        text = f"fit: slope {slope:.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval is not None else "")
        ax.loglog(xs, anchor * xs**slope, "-", color="C0", lw=1.5, zorder=2, label=text)
    if reference is not None:
        ax.loglog(xs, mean[0] * (xs / x[0]) ** reference, ":", color="k", lw=1.5, zorder=2,
                  label=f"theory: slope {reference:g}")  # fmt: skip
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


def width_colour(width):
    """One fixed colour per width, the same in every figure: matplotlib's tab10 indexed by
    log2(width) mod 10 (ten consecutive powers of two never share a colour)."""
    import matplotlib

    if not np.isfinite(width) or width < 1:
        raise ValueError(f"`width` must be a finite number >= 1; got {width!r}")
    return matplotlib.colormaps["tab10"](int(round(np.log2(float(width)))) % 10)


def comparison(path, comp, *, split="train", title=None):
    """An `compare.L2Comparison` as one figure: per width, the measured loss (seed mean as markers,
    its 95% interval as a band), eq. 3 (solid, drawn above the data) and the k = 1 model (dashed),
    with eq. 3's loss minimum t* marked (dotted); log-log axes; one legend for the widths' colours,
    one for what each line style means."""
    from matplotlib.lines import Line2D

    from .compare import L2Comparison, mean_interval

    if not isinstance(comp, L2Comparison):
        raise TypeError(f"`comp` must be a compare.L2Comparison; got {type(comp).__name__}")
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.subplots()
    for i, width in enumerate(comp.widths):
        colour = width_colour(width)
        t = comp.t[i].mean(axis=0)
        keep = t > 0
        mean, low, high = mean_interval(comp.measured[split][i])
        ax.fill_between(t[keep], low[keep], high[keep], color=colour, alpha=0.2, lw=0, zorder=1)
        ax.plot(t[keep], mean[keep], "o", ms=3, color=colour, zorder=2)
        ax.plot(t[keep], comp.theory[split][i].mean(axis=0)[keep], "-", lw=1.8, color=colour, zorder=4)
        ax.plot(t[keep], comp.linear[split][i].mean(axis=0)[keep], "--", lw=1.2, color=colour, zorder=3)
        t_star = comp.loss_minimum_time[i]
        if np.all(np.isfinite(t_star)):
            ax.axvline(float(np.mean(t_star)), ls=":", color=colour, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gradient-flow time t = η · step")
    ax.set_ylabel(f"{split} loss ½Σ(f − y)²")
    ax.grid(alpha=0.3, which="both")
    widths = [Line2D([], [], color=width_colour(w), lw=6, alpha=0.6, label=f"width {w}") for w in comp.widths]
    styles = [
        Line2D([], [], color="k", marker="o", ls="none", ms=3, label=f"trained: mean of {comp.seeds} seeds, band 95%"),
        Line2D([], [], color="k", ls="-", lw=1.8, label=f"eq. 3, k = {comp.k:g} (each run's Θ0, f0)"),
        Line2D([], [], color="k", ls="--", lw=1.2, label="linear model, k = 1"),
        Line2D([], [], color="k", ls=":", lw=1, label="t* of eq. 3 (loss minimum)"),
    ]
    first = ax.legend(handles=widths, fontsize=7, loc="lower left")
    ax.add_artist(first)
    ax.legend(handles=styles, fontsize=7, loc="upper right")
    return _save(fig, path, title or f"{split} loss: trained networks vs eq. 3 (λ = {comp.config.get('l2', '?')})")
