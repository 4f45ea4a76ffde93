import json

import numpy as np
import pytest

from widenet import harness, plots


def test_run_store_writes_at_once_and_resumes(tmp_path):
    store = harness.RunStore(tmp_path / "runs")
    calls = []

    def compute():
        calls.append(1)
        return {"loss": np.arange(3.0)}

    first = store.cached("sweep/width=8", compute)
    again = harness.RunStore(tmp_path / "runs").cached("sweep/width=8", compute)  # a resumed session
    assert len(calls) == 1
    np.testing.assert_array_equal(first["loss"], again["loss"])
    assert not list((tmp_path / "runs").glob("*.tmp.npz"))
    assert store.get("missing") is None


def test_checks_and_controls():
    assert harness.check("err", 0.01, below=0.1).passed
    assert not harness.check("err", 0.2, below=0.1).passed
    assert harness.check("wrong theory fails", 0.9, above=0.3, kind="control").passed
    assert not harness.check("nan never passes", float("nan"), below=1.0).passed
    with pytest.raises(ValueError):
        harness.check("both", 1.0, below=1.0, above=0.0)


def test_fit_slope_recovers_a_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert harness.fit_slope(x, 3.0 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)


def test_report_has_checks_tables_and_plots(tmp_path):
    ctx = harness.Context(tmp_path, harness.RunStore(tmp_path / "runs"))
    fig = plots.curves(
        ctx.figure_path("a.png"), [{"theory": [("th", [0, 1], [1, 2])], "experiment": [("exp", [0, 1], [1, 2.1])]}]
    )
    result = harness.ScenarioResult(
        "demo",
        "Demo",
        "A claim.",
        [harness.check("a|b", 0.5, below=1.0)],
        [str(fig.relative_to(tmp_path))],
        ["| t |\n|---|"],
    )
    report = harness.write_report([result], tmp_path, size="default")
    text = report.read_text()
    assert "| demo" in text.replace("[demo]", "demo") and "PASS" in text and "figures/a.png" in text and "a\\|b" in text
    assert fig.exists() and fig.stat().st_size > 1000
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["size"] == "default" and payload["scenarios"][0]["checks"][0]["passed"] is True
    assert [r.verdict for r in harness.read_results(tmp_path, size="default")] == ["PASS"]
    assert harness.read_results(tmp_path, size="paper") == []


def test_heatmap_writes_a_png_with_outlined_cells(tmp_path):
    values = np.arange(6.0).reshape(2, 3)
    path = plots.heatmap(tmp_path / "h.png", [
        {"title": "t", "values": values, "x": [1, 2, 3], "y": [10, 20], "label": "v", "marks": [(2, 1)]},
        {"title": "u", "values": -values, "x": [1, 2, 3], "y": [10, 20], "fmt": "{:.1e}"},
    ], title="both")  # fmt: skip
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rate_check_passes_only_when_the_interval_holds_the_exponent_and_not_zero():
    widths = [256, 512, 1024]
    rng = np.random.default_rng(0)
    clean = np.array([[w ** -1.0 * np.exp(0.02 * rng.normal()) for w in widths] for _ in range(6)])
    ok = harness.rate_check("r", widths, clean, exponent=-1.0)
    assert ok.verdict == "pass" and ok.n == 6 and ok.interval[0] < -1.0 < ok.interval[1]
    assert harness.rate_check("r", widths, clean, exponent=-0.5).verdict == "FAIL"  # a definite other rate
    noisy = np.array([[np.exp(rng.normal()) for _ in widths] for _ in range(3)])  # no trend, wide interval
    undecided = harness.rate_check("r", widths, noisy, exponent=float(np.mean([harness.fit_slope(widths, r) for r in noisy])))
    assert undecided.verdict == "INCONCLUSIVE"
    assert "contains" in undecided.criterion_text()


def test_seed_check_reports_mean_interval_and_n():
    c = harness.seed_check("c", [0.1, 0.12, 0.11, 0.09, 0.1], below=0.2)
    assert c.verdict == "pass" and c.n == 5 and c.interval[0] < c.value < c.interval[1]
    assert harness.seed_check("c", [0.1, 0.3], below=0.2).verdict == "INCONCLUSIVE"
    assert harness.seed_check("c", [0.3, 0.31, 0.29], below=0.2).verdict == "FAIL"


def test_undefined_seeds_are_left_out_and_make_the_check_inconclusive():
    values = np.array([0.01, np.nan, 0.02, 0.015])
    with pytest.raises(ValueError, match="undefined="):
        harness.seed_check("miss", values, below=0.05)
    c = harness.seed_check("miss", values, below=0.05, undefined="grid does not bracket it")
    assert c.verdict == "INCONCLUSIVE" and c.n == 3 and "1 of 4 seeds undefined: grid" in c.inconclusive
    assert c.value == pytest.approx(0.015)
    none = harness.seed_check("miss", [np.nan, np.nan], below=0.05, undefined="no bracket")
    assert none.verdict == "INCONCLUSIVE" and none.n == 0
    # no seeds at all (e.g. no run fell in the range a statistic is taken over): INCONCLUSIVE, not a crash or a FAIL
    empty = harness.seed_check("miss", [], below=0.05, undefined="no run in range")
    assert empty.verdict == "INCONCLUSIVE" and empty.n == 0 and "no seeds" in empty.inconclusive
    assert harness.seed_check("miss", np.zeros(0), above=0.5).verdict == "INCONCLUSIVE"
    x = np.array([1.0, 2.0, 4.0])
    # slopes -0.45, -0.5, -0.55 (distinct, so the interval has a width that rounding cannot undo)
    rows = np.array([x**-0.45, x**-0.5, x**-0.55, [1.0, np.nan, 0.5]])
    rate = harness.rate_check("rate", x, rows, exponent=-0.5, undefined="no bracket")
    assert rate.n == 3 and rate.verdict == "INCONCLUSIVE" and rate.value == pytest.approx(-0.5)
    assert harness.rate_check("rate", x, rows[:3], exponent=-0.5).verdict == "pass"


def test_an_unpaired_rate_is_the_slope_of_the_seed_mean_with_a_delta_method_interval():
    x = np.array([100.0, 400.0, 1600.0])
    rng = np.random.default_rng(1)
    # |fluctuation| ~ x^-1/2 with independent draws per x: per-seed slopes pair unrelated runs
    draws = np.abs(rng.normal(size=(40, 3))) * x**-0.5
    rate = harness.rate_check("miss", x, draws, exponent=-0.5, paired=False)
    assert rate.value == pytest.approx(harness.fit_slope(x, draws.mean(axis=0)))
    lo, hi = rate.interval
    assert lo < -0.5 < hi and hi < 0 and rate.verdict == "pass" and rate.n == 40
    assert harness.rate_check("miss", x, draws, exponent=-1.0, paired=False).verdict == "FAIL"
    one = harness.rate_check("miss", x, draws[:1], exponent=-0.5, paired=False)
    assert one.interval == (-np.inf, np.inf) and one.verdict == "INCONCLUSIVE"  # one seed bounds nothing
    # coverage at 5 seeds: the 95% interval holds the true exponent in about 95% of repeated draws
    hits = 0
    for trial in range(400):
        sample = np.abs(np.random.default_rng(100 + trial).normal(size=(5, 3))) * x**-0.5
        lo, hi = harness.rate_check("miss", x, sample, exponent=-0.5, paired=False).interval
        hits += lo <= -0.5 <= hi
    assert 0.90 <= hits / 400 <= 0.995


def test_count_check_is_the_every_run_rule():
    # no miss in 30 runs: the one-sided 95% bound 1 - 0.05^(1/30) = 0.0950 < 1/2, a pass
    ok = harness.count_check("phases", np.zeros(30, bool))
    assert ok.verdict == "pass" and ok.n == 30 and ok.value == 0.0
    assert ok.interval == pytest.approx((0.0, 1 - 0.05 ** (1 / 30)), abs=1e-15)
    assert "0 of 30 runs missed" in ok.measured_text() and "upper bound < 0.5" in ok.criterion_text()
    # one counterexample in 40 runs refutes a per-run prediction: FAIL, not an average near 1
    one = harness.count_check("phases", np.r_[np.zeros(39, bool), True])
    assert one.verdict == "FAIL" and one.value == pytest.approx(1 / 40) and "1 of 40" in one.measured_text()
    # n = 5 is the fewest runs whose bound excludes a chance-level miss rate 1/2: 1 - 0.05^(1/5) = 0.451, 1 - 0.05^(1/4) = 0.527
    assert harness.count_check("c", np.zeros(5, bool)).verdict == "pass"
    four = harness.count_check("c", np.zeros(4, bool))
    assert four.verdict == "INCONCLUSIVE" and "4 runs cannot bound" in four.inconclusive
    assert harness.count_check("c", np.zeros(30, bool), tolerance=0.05).verdict == "INCONCLUSIVE"
    empty = harness.count_check("c", np.zeros(0, bool))
    assert empty.verdict == "INCONCLUSIVE" and empty.n == 0 and empty.measured_text() == "no runs"
    assert harness.count_check("c", np.zeros(9, bool), inconclusive="window too short").verdict == "INCONCLUSIVE"
    # the verdict survives the report's JSON round trip
    back = harness.ScenarioResult.from_dict(harness.ScenarioResult("s", "t", "c", [one, ok]).to_dict())
    assert [c.verdict for c in back.checks] == ["FAIL", "pass"]


def test_miss_rate_interval_is_the_exact_binomial_one():
    from scipy import stats

    for misses, runs in [(1, 40), (3, 10), (7, 7), (0, 12)]:
        lo, hi = harness.miss_rate_interval(misses, runs)
        # independent route: the ends are where the binomial tails hold 2.5% (Clopper & Pearson 1934)
        if misses > 0:
            assert stats.binom.sf(misses - 1, runs, lo) == pytest.approx(0.025, rel=1e-9)
        else:
            assert lo == 0.0
        if misses < runs:
            assert stats.binom.cdf(misses, runs, hi) == pytest.approx(0.025, rel=1e-9)
        else:
            assert hi == 1.0


def test_count_check_verdict_edges_and_seed_grouping():
    import json

    # a miss FAILs at any n, and whatever reason the caller gave to call the check undecided
    assert harness.count_check("c", [True, False, False]).verdict == "FAIL"
    assert harness.count_check("c", [True] + [False] * 9, inconclusive="window short").verdict == "FAIL"
    one = harness.count_check("c", np.r_[np.zeros(39, bool), True])
    assert one.interval == harness.miss_rate_interval(1, 40)
    # the verdict itself applies the bound (a Check built directly, no reason string)
    assert harness.Check("c", 0.0, 0.5, "0", n=30, interval=(0.0, 0.095)).verdict == "pass"
    assert harness.Check("c", 0.0, 0.5, "0", n=3, interval=(0.0, 0.63)).verdict == "INCONCLUSIVE"
    assert harness.Check("c", 0.0, 0.5, "0", n=3).measured_text() == "0 of 3 runs missed; miss rate 0"
    # runs that share a seed are one unit: a seed misses when any of its runs does
    grid = np.zeros((5, 6), bool)
    grid[2, 4] = True
    by_seed = harness.count_check("c", grid)
    assert by_seed.n == 5 and by_seed.unit == "seeds" and by_seed.value == pytest.approx(0.2)
    assert by_seed.verdict == "FAIL" and "1 of 30 runs missed over 5 seeds" in by_seed.note
    ragged = harness.count_check("c", [False] * 7, seeds=[0, 0, 0, 1, 2, 3, 4])
    assert ragged.n == 5 and ragged.verdict == "pass" and "0 of 7 runs" in ragged.note
    assert harness.count_check("c", [False] * 6, seeds=[0, 0, 1, 1, 2, 2]).verdict == "INCONCLUSIVE"  # 3 seeds
    with pytest.raises(ValueError, match="seeds"):
        harness.count_check("c", [False] * 3, seeds=[0, 1])
    # through real JSON (lists for tuples, NaN for an empty count)
    empty = harness.count_check("c", np.zeros((0, 3), bool))
    text = json.dumps(harness.ScenarioResult("s", "t", "c", [by_seed, ragged, empty]).to_dict())
    back = harness.ScenarioResult.from_dict(json.loads(text))
    assert [c.verdict for c in back.checks] == ["FAIL", "pass", "INCONCLUSIVE"]
    assert back.checks[0].interval == by_seed.interval and back.checks[0].unit == "seeds"
