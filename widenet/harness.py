"""Validation harness: one `Problem` shared by theory and experiment, checks as measured numbers,
a resumable run store, and a Markdown report with plots.

A scenario (validate/scenarios/) builds a `Problem`, runs the experiment and the theory on the same
time grid, and returns a `ScenarioResult` whose `Check`s are numbers with stated thresholds: an
agreement, a rate in width, and a negative control that must fail (its check passes when the wrong
theory is measurably wrong).
"""

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._checks import check_int, check_range
from .data import Dataset
from .networks import Network, empirical_ntk
from .store import RunStore

__all__ = [
    "Problem",
    "build_problem",
    "Check",
    "check",
    "ScenarioResult",
    "RunStore",
    "Context",
    "fit_slope",
    "rate_check",
    "seed_interval",
    "seed_check",
    "count_check",
    "miss_rate_interval",
    "write_report",
    "read_results",
]


@dataclass(frozen=True)
class Problem:
    """Everything theory and experiment share: data, network, loss, initial parameters, f0, Θ0.

    Attributes:
        ntk_train, ntk_test_train: empirical NTK of the network at `params0` (outputs traced out).
        ntk_train_analytic, ntk_test_train_analytic: infinite-width NTK from the same stax definition.
        f0_train, f0_test: the network's real initial outputs.
    """

    data: Dataset
    network: Network
    loss: str
    params0: Any
    f0_train: np.ndarray
    f0_test: np.ndarray
    ntk_train: np.ndarray
    ntk_test_train: np.ndarray
    ntk_train_analytic: np.ndarray | None = None
    ntk_test_train_analytic: np.ndarray | None = None


@functools.lru_cache(maxsize=32)
def _jitted_ntk(apply_fn, implementation=3):
    """One compiled empirical-NTK function per network (problems of many seeds share it)."""
    return jax.jit(empirical_ntk(apply_fn, implementation=implementation))


def build_problem(data: Dataset, network: Network, *, key, loss="mse", analytic=True, params0=None):
    """The shared `Problem`: initialise the network (or take `params0`), evaluate f0 and both kernels."""
    from . import losses

    losses.get(loss)
    params = network.init(key, data.x_train.shape[1]) if params0 is None else params0
    ntk = _jitted_ntk(network.apply_fn, network.ntk_implementation)
    x, xt = data.x_train, data.x_test
    kernels = {}
    if analytic:
        kernels = {
            "ntk_train_analytic": np.asarray(network.ntk(x)),
            "ntk_test_train_analytic": np.asarray(network.ntk(xt, x)),
        }
    return Problem(
        data=data,
        network=network,
        loss=loss,
        params0=params,
        f0_train=np.asarray(network.apply_fn(params, x)),
        f0_test=np.asarray(network.apply_fn(params, xt)),
        ntk_train=np.asarray(ntk(x, None, params)),
        ntk_test_train=np.asarray(ntk(xt, x, params)),
        **kernels,
    )


@dataclass(frozen=True)
class Check:
    """A measured number against a threshold fixed from the theory before looking.

    kind: "agreement" (theory vs experiment or route vs route), "rate" (a slope in width or size),
    or "control" (a rival theory that must be measurably wrong: passes when it fails).

    direction "0" is the every-run rule (`count_check`): `value` is the share of `n` runs whose outcome
    the theory predicted wrong, `interval` its 95% Clopper–Pearson interval (one-sided with no miss); any miss FAILs, and no miss
    passes only when the one-sided 95% upper bound on the miss rate lies below `threshold` (1/2).

    With `interval` (a 95% interval of the statistic over `n` seeds), the check passes only when the
    whole interval lies on the right side of the threshold; when the interval straddles it, the size
    cannot decide the claim and the verdict is INCONCLUSIVE. `inconclusive` gives a reason to report
    INCONCLUSIVE whatever the value (a claim this size cannot decide).
    """

    name: str
    value: float
    threshold: float
    direction: str  # "<": below threshold; ">": above; "~": interval contains it, not 0; "0": no miss (count_check)
    kind: str = "agreement"
    note: str = ""
    interval: tuple[float, float] | None = None
    n: int | None = None
    inconclusive: str = ""
    unit: str = "runs"  # what `n` counts in a count_check: independent runs, or seeds

    @property
    def verdict(self):
        """One of `pass`, `FAIL` or `INCONCLUSIVE`."""
        if self.direction == "0" and np.isfinite(self.value) and self.value > 0:
            return "FAIL"  # the every-run rule: one counterexample refutes a per-run prediction, whatever else
        if self.inconclusive:
            return "INCONCLUSIVE"
        if not np.isfinite(self.value):
            return "FAIL"
        if self.direction == "0":
            return "pass" if _upper_miss_rate(self.n) < self.threshold else "INCONCLUSIVE"
        if self.direction == "~":  # a rate against the exponent the theory predicts
            lo, hi = self.interval
            if not lo <= self.threshold <= hi:
                return "FAIL"
            return "INCONCLUSIVE" if lo <= 0.0 <= hi else "pass"
        below = self.direction == "<"
        if self.interval is None:
            return "pass" if (self.value < self.threshold if below else self.value > self.threshold) else "FAIL"
        lo, hi = self.interval
        if (hi < self.threshold) if below else (lo > self.threshold):
            return "pass"
        if (lo >= self.threshold) if below else (hi <= self.threshold):
            return "FAIL"
        return "INCONCLUSIVE"

    @property
    def passed(self):
        return self.verdict == "pass"

    def measured_text(self):
        """The value, its interval and n as the report prints them."""
        if self.direction == "0":
            if not self.n:
                return f"no {self.unit}"
            text = f"{round(self.value * self.n)} of {self.n} {self.unit} missed; miss rate {_fmt(self.value)}"
            return text + (f" [{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]" if self.interval else "")
        text = _fmt(self.value)
        if self.interval is not None:
            text += f" [{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]"
        if self.n is not None:
            text += f", n = {self.n}"
        return text

    def criterion_text(self):
        """The pass criterion as the report prints it."""
        if self.direction == "~":
            return f"95% interval contains {_fmt(self.threshold)} and excludes 0"
        if self.direction == "0":
            return f"no miss, and the miss rate's one-sided 95% upper bound < {_fmt(self.threshold)}"
        if self.interval is None:
            return f"{self.direction} {_fmt(self.threshold)}"
        side = "upper" if self.direction == "<" else "lower"
        return f"95% interval's {side} end {self.direction} {_fmt(self.threshold)}"


def check(
    name,
    value,
    *,
    below=None,
    above=None,
    kind="agreement",
    note="",
    interval=None,
    n=None,
    inconclusive="",
    undefined="",
):
    """A `Check` that `value` (with its 95% `interval` over `n` seeds, if given) lies below or above a threshold.

    `undefined`: the reason to report INCONCLUSIVE when `value` is not finite (a statistic this size
    cannot compute, e.g. a correlation of constant values); without it a non-finite value FAILs.
    """
    if (below is None) == (above is None):
        raise ValueError("give exactly one of `below` and `above`")
    if undefined and not np.isfinite(value):
        inconclusive = inconclusive or undefined
    threshold, direction = (below, "<") if below is not None else (above, ">")
    if interval is not None:
        interval = (float(interval[0]), float(interval[1]))
    return Check(name, float(value), float(threshold), direction, kind, note, interval, n, inconclusive)


@dataclass
class ScenarioResult:
    """What a scenario reports: checks, figures (paths relative to the report) and Markdown tables."""

    name: str
    title: str
    claim: str
    checks: list[Check] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self):
        """`PASS` if every check passes, `FAIL` if any fails, else `INCONCLUSIVE`."""
        verdicts = {c.verdict for c in self.checks}
        if not self.checks or "FAIL" in verdicts:
            return "FAIL"
        return "INCONCLUSIVE" if "INCONCLUSIVE" in verdicts else "PASS"

    @property
    def passed(self):
        return self.verdict == "PASS"

    def to_dict(self):
        """The JSON form written to results.json (verdicts included)."""
        out = {k: v for k, v in asdict(self).items() if k != "checks"}
        out["verdict"] = self.verdict
        out["passed"] = self.passed
        out["checks"] = [{**asdict(c), "verdict": c.verdict, "passed": c.passed} for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, payload):
        """Rebuild a result from its `to_dict` form (derived fields are recomputed, not trusted)."""
        fields = {k: payload[k] for k in ("name", "title", "claim", "figures", "tables", "seconds")}
        names = Check.__dataclass_fields__
        checks = []
        for c in payload["checks"]:
            c = {k: v for k, v in c.items() if k in names}
            if c.get("interval") is not None:
                c["interval"] = tuple(c["interval"])
            checks.append(Check(**c))
        return cls(checks=checks, **fields)


@dataclass
class Context:
    """What a scenario gets: output folder, run store, size ("default" CPU-sized, or "paper"), a logger."""

    out_dir: Path
    store: RunStore
    size: str = "default"
    log: Callable[[str], None] = print

    def figure_path(self, name):
        folder = self.out_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


def _finite_seeds(name, values, undefined, inconclusive):
    """Seeds whose statistic is defined, and the INCONCLUSIVE reason when some are not (or there are none)."""
    if values.size == 0:
        reason = "no seeds to measure" + (f" ({undefined})" if undefined else "")
        return values, f"{inconclusive}; {reason}" if inconclusive else reason
    defined = np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1)
    if defined.all():
        return values, inconclusive
    if not undefined:
        raise ValueError(
            f"check {name!r}: `values` has {int((~defined).sum())} of {defined.size} seeds without a finite value; pass "
            "`undefined=` (why this size cannot define it) to report the check as INCONCLUSIVE"
        )
    reason = f"{int((~defined).sum())} of {defined.size} seeds undefined: {undefined}"
    return values[defined], f"{inconclusive}; {reason}" if inconclusive else reason


def rate_check(name, x, y_by_seed, *, exponent, note="", undefined="", paired=True):
    """A rate (log-log slope of `y` against `x`) checked against the `exponent` the theory predicts.

    `y_by_seed` is (seeds, len(x)). With `paired=True` the slope is fitted per seed and its 95%
    t-interval is taken over seeds (for a systematic error measured on each seed's runs). With
    `paired=False` (the runs at different x are independent draws, e.g. the absolute value of a
    fluctuation) the statistic is the slope of log(seed mean) against log x, and its 95% interval
    comes from the delta method: var log ȳ_x ≈ s_x²/(S ȳ_x²), independent across x, propagated
    through the least-squares slope, with Student's t at S - 1 degrees of freedom (S seeds; a
    percentile bootstrap would under-cover at S = 5). The check passes when the interval contains `exponent` and excludes 0, FAILs when it
    excludes `exponent`, and is INCONCLUSIVE when it contains both (too few seeds or widths to tell).
    `undefined`: why a seed can lack a finite value at some x; such seeds are left out and the check
    is INCONCLUSIVE with that reason (without it, a non-finite value raises ValueError).
    """
    y_by_seed = np.asarray(y_by_seed, dtype=float)
    if y_by_seed.ndim != 2 or y_by_seed.shape[1] != len(x):
        raise ValueError(f"`y_by_seed` must be (seeds, {len(x)}); got shape {y_by_seed.shape}")
    y_by_seed, inconclusive = _finite_seeds(name, y_by_seed, undefined, "")
    if y_by_seed.shape[0] == 0:
        return Check(name, float("nan"), float(exponent), "~", "rate", note, (-np.inf, np.inf), 0, inconclusive)
    if paired:
        slopes = np.array([fit_slope(x, row) for row in y_by_seed])
        mean, lo, hi = seed_interval(slopes)
        return Check(name, mean, float(exponent), "~", "rate", note, (lo, hi), len(slopes), inconclusive)
    from scipy import stats

    seeds = y_by_seed.shape[0]
    means = y_by_seed.mean(axis=0)
    value = fit_slope(x, means)
    if seeds < 2:
        lo, hi = -np.inf, np.inf
    else:
        centred = np.log(np.asarray(x, dtype=float))
        centred = centred - centred.mean()
        var_log_mean = y_by_seed.var(axis=0, ddof=1) / (seeds * means**2)
        half = stats.t.ppf(0.975, seeds - 1) * np.sqrt(np.sum(centred**2 * var_log_mean)) / np.sum(centred**2)
        lo, hi = value - half, value + half
    note = (note + "; " if note else "") + "slope of the seed mean, delta-method interval over seeds"
    return Check(name, value, float(exponent), "~", "rate", note, (float(lo), float(hi)), seeds, inconclusive)


def seed_interval(values, confidence=0.95):
    """(mean, low, high) of `values` over seeds (axis 0): the two-sided Student-t interval.

    With one value the interval is (-inf, inf): one seed cannot bound a mean.
    """
    from scipy import stats

    check_range("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    check_range("values", values, meaning="one statistic per seed")
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, -np.inf), np.full_like(mean, np.inf)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def seed_check(name, values, *, below=None, above=None, kind="agreement", note="", inconclusive="", undefined=""):
    """`check` on the mean of `values` over seeds with its 95% t-interval and n (module `Check`);
    `inconclusive`: a reason this size cannot decide the claim (reported whatever the values);
    `undefined`: why a seed's value can be non-finite (those seeds are left out and the check is
    INCONCLUSIVE with the reason; without it a non-finite value raises ValueError)."""
    values = np.asarray(values, dtype=float).ravel()
    values, inconclusive = _finite_seeds(name, values, undefined, inconclusive)
    if values.size == 0:
        return check(name, np.nan, below=below, above=above, kind=kind, note=note, n=0, inconclusive=inconclusive)
    mean, lo, hi = seed_interval(values)
    return check(name, mean, below=below, above=above, kind=kind, note=note, interval=(lo, hi), n=values.size,
                 inconclusive=inconclusive)  # fmt: skip


def miss_rate_interval(misses, runs, confidence=0.95):
    """The two-sided Clopper–Pearson (exact binomial) interval of a miss rate `misses / runs`."""
    from scipy import stats

    runs = check_int("runs", runs, low=1, meaning="a number of runs")
    misses = check_int("misses", misses, low=0, high=runs, meaning="runs the theory got wrong")
    tail = (1 - confidence) / 2
    lo = 0.0 if misses == 0 else float(stats.beta.ppf(tail, misses, runs - misses + 1))
    hi = 1.0 if misses == runs else float(stats.beta.ppf(1 - tail, misses + 1, runs - misses))
    return lo, hi


def _upper_miss_rate(runs, confidence=0.95):
    """One-sided upper confidence bound on the miss rate after `runs` runs without a miss: 1 - (1 - c)^(1/n)."""
    return 1.0 - (1.0 - confidence) ** (1.0 / runs) if runs else 1.0


def count_check(name, missed, *, seeds=None, kind="agreement", note="", inconclusive="", tolerance=0.5):
    """The every-run rule: a theory that predicts each run's outcome (its phase, stability, divergence) is
    checked by counting the runs it got wrong.

    `missed`: one boolean per run (True: the outcome is not the predicted one), 1-D when the runs are
    independent (one per seed), or (seeds, runs per seed) when runs share a seed (its init, its data): such
    runs are correlated, so the independent unit is the seed, and a seed misses when any of its runs does;
    `seeds` (one seed label per run of a 1-D `missed`) does the same for seeds with unequal numbers of runs.
    The report gives the misses, n (runs or seeds) and the miss rate's 95% Clopper–Pearson interval over
    those units (one-sided, [0, 1 - 0.05^(1/n)], when there is no miss); a 2-D count also gives the runs
    in `note`. Verdict: any miss FAILs (a counterexample to a per-run prediction is not noise to be
    averaged), whatever `inconclusive` says; no miss passes when the units are enough to exclude a miss
    rate of `tolerance` — the one-sided 95% upper bound 1 - 0.05^(1/n) below it (n >= 5 at the default
    1/2, a theory right only by chance on a two-way outcome) — and is INCONCLUSIVE with fewer. Runs the
    theory cannot decide (e.g. a window shorter than its own transient) are left out by the scenario
    beforehand, by a rule computed from the theory alone, and named in `note`.
    """
    check_range("tolerance", tolerance, low=0.0, high=1.0, low_open=True, high_open=True)
    missed = np.asarray(missed, dtype=bool)
    if missed.ndim not in (1, 2):
        raise ValueError(f"`missed` must be 1-D (runs) or 2-D (seeds, runs per seed); got shape {missed.shape}")
    if seeds is not None:
        seeds = np.asarray(seeds)
        if missed.ndim != 1 or seeds.shape != missed.shape:
            raise ValueError(
                f"`seeds` must give one seed per run of a 1-D `missed` {missed.shape}; got shape {seeds.shape}"
            )
    if missed.ndim == 2:  # (seeds, runs per seed): the same as labelling each run with its row
        seeds, missed = np.repeat(np.arange(missed.shape[0]), missed.shape[1]), missed.ravel()
    unit = "runs" if seeds is None else "seeds"
    if seeds is not None:
        labels = np.unique(seeds)
        runs_text = f"{int(missed.sum())} of {missed.size} runs missed over {len(labels)} seeds"
        note = f"{runs_text}; {note}" if note else runs_text
        missed = np.array([missed[seeds == label].any() for label in labels], dtype=bool)
    units, misses = missed.size, int(missed.sum())
    if units == 0:
        reason = f"no {unit} to count"
        return Check(name, float("nan"), float(tolerance), "0", kind, note, None, 0,
                     f"{inconclusive}; {reason}" if inconclusive else reason, unit)  # fmt: skip
    # with no miss, the one-sided interval [0, 1 - 0.05^(1/n)] the verdict uses; else the two-sided one
    interval = (0.0, _upper_miss_rate(units)) if misses == 0 else miss_rate_interval(misses, units)
    if not inconclusive and misses == 0 and _upper_miss_rate(units) >= tolerance:
        inconclusive = f"{units} {unit} cannot bound the miss rate below {tolerance:g}"
    return Check(name, misses / units, float(tolerance), "0", kind, note, interval, units, inconclusive, unit)


def fit_slope(x, y):
    """Least-squares slope of log y against log x (a convergence rate)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"`x` and `y` must be 1-D of equal length >= 2; got shapes {x.shape} and {y.shape}")
    for name, v in (("x", x), ("y", y)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"`{name}` must be finite and > 0 (a log-log slope); got {v}")
    x, y = np.log(x), np.log(y)
    return float(np.polyfit(x, y, 1)[0])


SIZES = ("default", "paper", "smoke")


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {SIZES}; got {size!r}")


def _fmt(v):
    if not np.isfinite(v):
        return str(v)
    return f"{v:.3g}" if (abs(v) >= 1e-3 or v == 0) and abs(v) < 1e4 else f"{v:.2e}"


def write_report(results: list[ScenarioResult], out_dir, *, size):
    """Write report.md (summary, then each scenario's checks, tables and plots) and results.json."""
    _check_size(size)
    out_dir = Path(out_dir)
    lines = ["# widenet validation report", ""]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    total = sum(r.seconds for r in results)
    lines += [f"Size: `{size}`. Generated {stamp}; scenarios took {total:.0f} s in all.", ""]
    lines += ["| scenario | result | checks passed | time |", "|---|---|---|---|"]
    for r in results:
        ok = sum(c.passed for c in r.checks)
        lines.append(f"| [{r.name}](#{r.name}) | {r.verdict} | {ok}/{len(r.checks)} | {r.seconds:.0f} s |")
    lines.append("")
    for r in results:
        lines += [f"## {r.name}", "", f"**{r.title}** — {r.verdict}", "", r.claim, ""]
        lines += ["| check | kind | measured | criterion | result |", "|---|---|---|---|---|"]
        for c in r.checks:
            note = f" ({c.note})" if c.note else ""
            why = f": {c.inconclusive}" if c.inconclusive else ""
            name = f"{c.name}{note}".replace("|", "\\|")
            lines.append(f"| {name} | {c.kind} | {c.measured_text()} | {c.criterion_text()} | {c.verdict}{why} |")
        lines.append("")
        for table in r.tables:
            lines += [table, ""]
        for fig in r.figures:
            lines += [f"![{r.name}]({fig})", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    payload = {"size": size, "scenarios": [r.to_dict() for r in results]}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2))
    return out_dir / "report.md"


def read_results(out_dir, *, size):
    """The scenario results of an earlier report in `out_dir` at this `size` (empty if none)."""
    _check_size(size)
    path = Path(out_dir) / "results.json"
    if not path.exists():
        return []
    try:
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict) or payload.get("size") != size:
            return []
        return [ScenarioResult.from_dict(r) for r in payload["scenarios"]]
    except (ValueError, KeyError, TypeError):
        return []
