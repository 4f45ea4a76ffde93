"""The plotting layer's rules: fixed width colours, vector copies, bands behind the data."""

import matplotlib.colors as mcolors
import numpy as np
import pytest

from widenet import plots


def test_width_colours_are_fixed_distinct_and_never_grey():
    widths = [2**p for p in range(4, 13)]  # nine consecutive powers of two
    colours = [mcolors.to_hex(plots.width_colour(w)) for w in widths]
    assert len(set(colours)) == 9
    assert mcolors.to_hex("tab:gray") not in colours
    assert colours == [mcolors.to_hex(plots.width_colour(w)) for w in widths]  # the same on every call
    assert mcolors.to_hex(plots.width_colour(512)) == mcolors.to_hex("tab:blue")


def test_every_figure_gets_a_vector_copy_unless_asked_not_to(tmp_path):
    panel = {"title": "p", "xlabel": "x", "ylabel": "y", "experiment": [("data", [1, 2, 3], [1, 4, 9])],
             "theory": [("x²", [1, 2, 3], [1, 4, 9])], "bands": [("95%", [1, 2, 3], [0, 3, 8], [2, 5, 10])]}  # fmt: skip
    plots.curves(tmp_path / "a.png", [panel])
    assert (tmp_path / "a.png").stat().st_size > 5_000
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    plots.curves(tmp_path / "b.png", [panel], vector="svg")
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()[:500]
    plots.curves(tmp_path / "c.png", [panel], vector=None)
    assert not (tmp_path / "c.pdf").exists() and not (tmp_path / "c.svg").exists()
    plots.rate(
        tmp_path / "r.png", [1, 2, 4], np.array([[1.0, 0.5, 0.25], [1.1, 0.52, 0.27]]), xlabel="width", ylabel="err"
    )
    assert (tmp_path / "r.pdf").exists()
    with pytest.raises(ValueError, match="`vector`"):
        plots.curves(tmp_path / "d.png", [panel], vector="eps")


def test_bands_are_drawn_behind_the_lines():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    mean = plots._seed_band(ax, np.arange(3.0), np.array([[1.0, 2.0, 3.0], [1.2, 2.2, 3.4], [0.8, 1.8, np.nan]]), "C0")
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.2])  # NaN seeds are left out point by point
    band, line = ax.collections[0], ax.lines[0]
    assert band.get_zorder() < line.get_zorder()


def test_a_log_panel_with_nothing_positive_is_drawn_linear_with_a_note(tmp_path):
    """A statistic a size leaves undefined (all NaN) on a log axis: matplotlib warns and raises; the figure is drawn."""
    from matplotlib.figure import Figure

    nothing = {"title": "undefined", "xlabel": "T", "ylabel": "λ", "xscale": "log", "yscale": "log",
               "experiment": [("tuned", [10, 100], [np.nan, np.nan])], "theory": [("c/T", [10, 100], [0.0, np.nan])]}  # fmt: skip
    fine = {**nothing, "experiment": [("tuned", [10, 100], [1e-3, 1e-4])]}
    plots.curves(tmp_path / "a.png", [nothing, fine])
    assert (tmp_path / "a.png").stat().st_size > 5_000
    fig = Figure()
    empty, kept = fig.subplots(1, 2)
    for ax, panel in ((empty, nothing), (kept, fine)):
        for _, x, y in panel["experiment"] + panel["theory"]:
            ax.plot(x, y)
        plots._set_scales(ax, "log", "log")
    assert empty.get_yscale() == "linear" and empty.get_xscale() == "log"  # x has positive values: kept
    assert "no finite positive y value" in empty.texts[0].get_text()
    assert kept.get_yscale() == "log" and not kept.texts
    # a vertical line's y (axes coordinates 0..1) is not data: it does not keep an empty log axis
    lines = {**nothing, "experiment": [("tuned", [10, 100], [np.nan, np.nan])], "vlines": [("budget", 50)]}
    plots.curves(tmp_path / "c.png", [lines])
    assert (tmp_path / "c.png").exists()
    # a scatter's data are its offsets, not its marker's outline (which has positive coordinates)
    ax = Figure().subplots()
    ax.scatter([10, 100], [np.nan, np.nan])
    plots._set_scales(ax, "log", "log")
    assert ax.get_yscale() == "linear" and ax.get_xscale() == "log"
