"""Theory-versus-experiment figures (matplotlib): each function saves one figure.

Rules every figure follows: theory as lines drawn above the experiment's markers; one colour per
width, the same in every figure (`width_colour`); seed means with their 95% interval as bands or
error bars; every line in a legend; units on the axes; log ticks without colliding labels. The
figure is written to `path` (its suffix picks the format) and, by default, as a vector PDF beside it
(`vector="pdf"`, or "svg", or None).

Figures are drawn on `matplotlib.figure.Figure` objects directly, without pyplot, so importing
widenet never selects or changes the user's matplotlib backend (a notebook keeps its own).
"""

import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["curves", "rate", "heatmap", "comparison", "catapult_comparison", "floquet_comparison", "width_colour"]

_VECTOR = ("pdf", "svg", None)

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


def _set_scales(ax, xscale, yscale):
    """Set the axis scales; a log axis with nothing finite and positive to show (every value NaN or
    <= 0, e.g. a statistic this size leaves undefined) stays linear with a note, instead of failing:
    matplotlib warns, then raises, on a log axis whose data are all NaN."""
    from matplotlib.collections import PolyCollection

    data = {"x": [], "y": []}
    for line in ax.lines:  # a coordinate counts only where it is data (axvline's y, axhline's x are not)
        x_is_data, y_is_data = line.get_transform().contains_branch_seperately(ax.transData)
        if x_is_data:
            data["x"].append(np.asarray(line.get_xdata(), dtype=float).ravel())
        if y_is_data:
            data["y"].append(np.asarray(line.get_ydata(), dtype=float).ravel())
    for collection in ax.collections:
        if isinstance(collection, PolyCollection):  # a band: its outline
            blocks = [path.vertices for path in collection.get_paths()]
        else:  # a scatter: its points are the offsets
            blocks = [np.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2)]
        for xy in blocks:
            data["x"].append(xy[:, 0])
            data["y"].append(xy[:, 1])
    for axis, scale, set_scale in (("x", xscale, ax.set_xscale), ("y", yscale, ax.set_yscale)):
        values = np.concatenate(data[axis]) if data[axis] else np.zeros(0)
        if scale == "log" and not np.any(np.isfinite(values) & (values > 0)):
            ax.text(0.5, 0.5, f"no finite positive {axis} value to show on a log scale", transform=ax.transAxes,
                    ha="center", va="center", fontsize=8, color="gray")  # fmt: skip
            scale = "linear"
        set_scale(scale)


def _check_vector(vector):
    if vector not in _VECTOR:
        raise ValueError(f"`vector` must be one of {_VECTOR}; got {vector!r}")


def _save(fig, path, title, vector):
    """Write `fig` to `path` and, unless `vector` is None, as a vector copy beside it (same stem)."""
    from pathlib import Path

    path = Path(path)
    if title:
        fig.suptitle(title)
    for ax in fig.axes:
        _clean_log_ticks(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    if vector is not None and path.suffix.lower() != f".{vector}":
        fig.savefig(path.with_suffix(f".{vector}"))
    return path


def _check_panels(panels):
    if not isinstance(panels, (list, tuple)) or not panels or not all(isinstance(p, dict) for p in panels):
        raise ValueError(f"`panels` must be a non-empty list of dicts; got {panels!r:.80}")


def curves(path, panels, *, title=None, width=6.0, vector="pdf"):
    """Panels of curves: `panels` is a list of dicts with keys
    `title`, `xlabel`, `ylabel`, `xscale`/`yscale` (optional), `theory` and `experiment`: lists of
    (label, x, y) or (label, x, y, {matplotlib style}) (e.g. `{"color": width_colour(w)}`),
    `bands`: lists of (label, x, low, high) or (label, x, low, high, {style}) drawn as shaded
    intervals behind everything (e.g. seed intervals; label None keeps them out of the legend), and
    `vlines`/`hlines`: lists of (label, value) or (label, value, {style}). Theory lines are drawn
    above the experiment."""
    _check_panels(panels)
    _check_vector(vector)
    fig = Figure(figsize=(width * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, x, low, high, *style in panel.get("bands", []):
            ax.fill_between(x, low, high, label=label, **{"alpha": 0.2, "lw": 0, "zorder": 1, **(style[0] if style else {})})
        for label, x, y, *style in panel.get("experiment", []):
            ax.plot(x, y, label=label, **{**_EXPERIMENT_STYLE, "zorder": 2, **(style[0] if style else {})})
        for label, x, y, *style in panel.get("theory", []):  # drawn above the data
            ax.plot(x, y, label=label, **{**_THEORY_STYLE, "zorder": 3, **(style[0] if style else {})})
        for label, value, *style in panel.get("vlines", []):
            ax.axvline(value, **{"ls": "--", "color": "gray", "lw": 1, "label": label, **(style[0] if style else {})})
        for label, value, *style in panel.get("hlines", []):
            ax.axhline(value, **{"ls": ":", "color": "k", "lw": 1, "label": label, **(style[0] if style else {})})
        _set_scales(ax, panel.get("xscale", "linear"), panel.get("yscale", "linear"))
        _label(ax, panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, title, vector)


def rate(path, x, y, *, xlabel, ylabel, slope=None, title=None, reference=None, interval=None, vector="pdf"):
    """Log-log points with their fitted slope and the slope the theory predicts.

    `y` is (len(x),) or (seeds, len(x)); with seeds the points are the seed means with 95%
    t-interval error bars (each seed faint behind them) and the fitted line has the mean per-seed
    slope (`harness.rate_check`'s statistic), labelled with its `interval` when given. `reference`:
    the predicted exponent, drawn through the first mean as a dotted line. Widths take their fixed
    colours when `xlabel` is "width".
    """
    from .harness import fit_slope, seed_interval

    _check_vector(vector)
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
    return _save(fig, path, None, vector)


def heatmap(path, panels, *, title=None, width=5.5, vector="pdf"):
    """Panels of values on a grid: `panels` is a list of dicts with keys `title`, `values` (ny, nx),
    `x` and `y` (tick labels), `xlabel`, `ylabel`, `label` (colour bar), optional `fmt` for the
    annotation of each cell and `marks`: a list of (ix, iy) cells to outline."""
    _check_panels(panels)
    _check_vector(vector)
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
    return _save(fig, path, title, vector)


def width_colour(width):
    """One fixed colour per width, the same in every figure: matplotlib's tab10 without its grey
    (grey reads as "background" or "reference"), indexed by log2(width) mod 9, so nine consecutive
    powers of two never share a colour (512 is blue, 1024 orange, 2048 green, 128 olive)."""
    import matplotlib

    if not np.isfinite(width) or width < 1:
        raise ValueError(f"`width` must be a finite number >= 1; got {width!r}")
    palette = [0, 1, 2, 3, 4, 5, 6, 8, 9]  # tab10 without grey (7)
    return matplotlib.colormaps["tab10"](palette[int(round(np.log2(float(width)))) % len(palette)])


def comparison(path, comp, *, split="train", title=None, vector="pdf"):
    """An `compare.L2Comparison` as one figure: per width, the measured loss (seed mean as markers,
    its 95% interval as a band), eq. 3 (solid, drawn above the data) and the k = 1 model (dashed),
    with eq. 3's loss minimum t* marked (dotted); log-log axes; one legend for the widths' colours,
    one for what each line style means."""
    from matplotlib.lines import Line2D

    from .compare import L2Comparison

    if not isinstance(comp, L2Comparison):
        raise TypeError(f"`comp` must be a compare.L2Comparison; got {type(comp).__name__}")
    _check_vector(vector)
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.subplots()
    for i, width in enumerate(comp.widths):
        colour = width_colour(width)
        t = comp.t[i].mean(axis=0)
        keep = t > 0
        _seed_band(ax, t[keep], comp.measured[split][i][:, keep], colour)  # a diverged seed is left out
        ax.plot(t[keep], comp.theory[split][i].mean(axis=0)[keep], "-", lw=1.8, color=colour, zorder=4)
        ax.plot(t[keep], comp.linear[split][i].mean(axis=0)[keep], "--", lw=1.2, color=colour, zorder=3)
        t_star = comp.loss_minimum_time[i]
        if np.all(np.isfinite(t_star)):
            ax.axvline(float(np.mean(t_star)), ls=":", color=colour, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gradient-flow time t = η · step")
    ax.set_ylabel(f"{split} loss " + ("½Σ(f − y)²" if comp.config.get("loss", "mse") == "mse" else "Σ cross-entropy"))
    ax.grid(alpha=0.3, which="both")
    styles = [
        Line2D([], [], color="k", marker="o", ms=3, lw=0.8, label=f"trained: mean of {comp.seeds} seeds, band 95%"),
        Line2D([], [], color="k", ls="-", lw=1.8, label=f"{comp.config.get('route', 'eq. 3')}, k = {comp.k:g} (each run's Θ0, f0)"),
        Line2D([], [], color="k", ls="--", lw=1.2, label="linear model, k = 1"),
    ]
    if np.isfinite(comp.loss_minimum_time).any():
        styles.append(Line2D([], [], color="k", ls=":", lw=1, label="t* of eq. 3 (loss minimum)"))
    _width_legend(ax, comp.widths, styles, loc_widths="lower left")
    lam = comp.config.get("l2", "?")
    lam = "a schedule" if callable(lam) else lam
    return _save(fig, path, title or f"{split} loss: trained networks vs {comp.config.get('route', 'eq. 3')} (λ = {lam})", vector)


def _seed_band(ax, x, values, colour, *, marker="o", label=None):
    """Seed mean as markers and its 95% t-interval as a band (NaN seeds left out per point)."""
    from .harness import seed_interval

    values = np.asarray(values, dtype=float)
    mean, low, high = np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        column = values[:, j][np.isfinite(values[:, j])]
        if column.size:
            mean[j], low[j], high[j] = (float(v) for v in seed_interval(column))
    finite = np.isfinite(low) & np.isfinite(high)
    ax.fill_between(x, np.where(finite, low, mean), np.where(finite, high, mean), color=colour, alpha=0.2, lw=0, zorder=1)
    ax.plot(x, mean, marker=marker, ms=3, lw=0.8, color=colour, zorder=2, label=label)
    return mean


def _width_legend(ax, widths, styles, *, loc_widths="upper left", loc_styles="upper right"):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=width_colour(w), lw=6, alpha=0.6, label=f"width {w}") for w in widths]
    first = ax.legend(handles=handles, fontsize=7, loc=loc_widths)
    ax.add_artist(first)
    ax.legend(handles=styles, fontsize=7, loc=loc_styles)


def catapult_comparison(path, comp, *, title=None, vector="pdf"):
    """A `compare.CatapultComparison`: per width, the loss's peak over L(0) and $\\eta\\lambda_{end}$
    against $\\eta\\lambda_0$ (seed means, 95% bands), with the theory's window 2 < ηλ0 < 4, the
    post-catapult bound ηλ_end < 2, and each width's measured lower edge (mean over seeds)."""
    from matplotlib.lines import Line2D

    from .compare import CatapultComparison

    if not isinstance(comp, CatapultComparison):
        raise TypeError(f"`comp` must be a compare.CatapultComparison; got {type(comp).__name__}")
    _check_vector(vector)
    fig = Figure(figsize=(11.0, 4.4))
    peak_ax, end_ax = fig.subplots(1, 2)
    x = comp.products
    edges = comp.lower_edges()
    with warnings.catch_warnings():  # diverged runs give nan peaks
        warnings.simplefilter("ignore", RuntimeWarning)
        peak = np.nanmax(comp.train_loss, axis=-1) / comp.train_loss[..., 0]
    for i, width in enumerate(comp.widths):
        colour = width_colour(width)
        _seed_band(peak_ax, x, np.where(comp.diverged_at[i] >= 0, np.nan, peak[i]), colour)
        _seed_band(end_ax, x, x[None, :] * comp.lambda_end[i] / comp.lambda0[i][:, None], colour)
        finite = edges[i][np.isfinite(edges[i])]
        for ax in (peak_ax, end_ax):
            if finite.size:
                ax.axvline(float(np.mean(finite)), color=colour, ls="-.", lw=1, zorder=2)
    for ax in (peak_ax, end_ax):
        for edge in (2.0, 4.0):
            ax.axvline(edge, color="k", ls="--", lw=1.4, zorder=4)
        ax.set_xlabel("η λ0 (λ0: top eigenvalue of the run's initial empirical NTK)")
        ax.grid(alpha=0.3, which="both")
    end_ax.axhline(2.0, color="k", ls=":", lw=1.4, zorder=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        highest = np.nanmax(x[None, None, :] * comp.lambda_end / comp.lambda0[..., None])
    end_ax.set_ylim(0.0, max(2.0, highest if np.isfinite(highest) else 2.0) * 1.3)  # room for the legends
    peak_ax.axhline(1.0, color="0.4", lw=0.8, zorder=1)
    peak_ax.set_yscale("log")
    peak_ax.set_ylabel("max_t L(t) / L(0)")
    end_ax.set_ylabel("η λ_max at the end of the run")
    peak_ax.set_title("loss peak (diverged runs left out)")
    end_ax.set_title("kernel after training")
    styles = [
        Line2D([], [], color="k", marker="o", ms=3, lw=0.8, label=f"trained: mean of {comp.seeds} seeds, band 95%"),
        Line2D([], [], color="k", ls="--", lw=1.4, label="theory: window 2 < ηλ0 < 4"),
        Line2D([], [], color="k", ls="-.", lw=1, label="measured lower edge (seed mean)"),
    ]
    _width_legend(peak_ax, comp.widths, styles)
    _width_legend(end_ax, comp.widths, [*styles[:1], Line2D([], [], color="k", ls=":", lw=1.4, label="theory: ηλ_end < 2 after a catapult")])
    return _save(fig, path, title or "GD catapults: measured phases vs the quadratic model's window", vector)


def floquet_comparison(path, comp, *, title=None, vector="pdf"):
    """A `compare.FloquetComparison`: measured log growth of the residual per weight cycle against
    η/η* (seed means, 95% bands, one colour per width), each network's own predicted $\\log|\\mu_{max}|$
    (lines, drawn above), the infinite-width boundary η = η* and the static edge 2/λ_max."""
    from matplotlib.lines import Line2D

    from .compare import FloquetComparison

    if not isinstance(comp, FloquetComparison):
        raise TypeError(f"`comp` must be a compare.FloquetComparison; got {type(comp).__name__}")
    _check_vector(vector)
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.subplots()
    for i, width in enumerate(comp.widths):
        colour = width_colour(width)
        _seed_band(ax, comp.ratios, np.where(np.isfinite(comp.growth[i]), comp.growth[i], np.nan), colour)
        ax.plot(comp.ratios, comp.own_log_radius[i].mean(axis=0), "-", lw=1.8, color=colour, zorder=4)
    ax.axhline(0.0, color="0.4", lw=0.8, zorder=1)
    ax.axvline(1.0, color="k", ls="--", lw=1.4, zorder=4)
    static = comp.static_edge / comp.eta_star
    if comp.ratios.min() <= static <= comp.ratios.max():
        ax.axvline(static, color="k", ls=":", lw=1.4, zorder=4)
    ax.set_xlabel("η / η* (η*: Floquet boundary of the infinite-width kernel)")
    ax.set_ylabel("log growth of the residual per weight cycle")
    ax.grid(alpha=0.3)
    styles = [
        Line2D([], [], color="k", marker="o", ms=3, lw=0.8, label=f"lazy networks: mean of {comp.seeds} seeds, band 95%"),
        Line2D([], [], color="k", lw=1.8, label="theory: log|μ_max| of each network's own kernel"),
        Line2D([], [], color="k", ls="--", lw=1.4, label="theory: η* at infinite width"),
        Line2D([], [], color="k", ls=":", lw=1.4, label=f"rival: static edge 2/λ_max = {static:.3f} η*"),
    ]
    _width_legend(ax, comp.widths, styles, loc_widths="lower right", loc_styles="upper left")
    return _save(fig, path, title or f"Floquet boundary vs trained networks (T = {comp.period}, A = {comp.amplitude:g})", vector)
