"""Validation harness: one `Problem` shared by theory and experiment, checks as measured numbers,
a resumable run store, and a Markdown report with plots.

A scenario (validate/scenarios/) builds a `Problem`, runs the experiment and the theory on the same
time grid, and returns a `ScenarioResult` whose `Check`s are numbers with stated thresholds: an
agreement, a rate in width, and a negative control that must fail (its check passes when the wrong
theory is measurably wrong).
"""

import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .data import Dataset
from .networks import Network, empirical_ntk

__all__ = [
    "Problem",
    "build_problem",
    "Check",
    "check",
    "ScenarioResult",
    "RunStore",
    "Context",
    "fit_slope",
    "write_report",
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
def _jitted_ntk(apply_fn):
    """One compiled empirical-NTK function per network (problems of many seeds share it)."""
    return jax.jit(empirical_ntk(apply_fn))


def build_problem(data: Dataset, network: Network, *, key, loss="mse", analytic=True, params0=None):
    """The shared `Problem`: initialise the network (or take `params0`), evaluate f0 and both kernels."""
    params = network.init(key, data.x_train.shape[1]) if params0 is None else params0
    ntk = _jitted_ntk(network.apply_fn)
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
    """A measured number against a stated threshold.

    kind: "agreement" (theory vs experiment or route vs route), "rate" (a slope in width or size),
    or "control" (a wrong theory that must be measurably wrong: passes when it fails).
    """

    name: str
    value: float
    threshold: float
    direction: str  # "<": value must be below threshold; ">": above
    kind: str = "agreement"
    note: str = ""

    @property
    def passed(self):
        if not np.isfinite(self.value):
            return False
        return self.value < self.threshold if self.direction == "<" else self.value > self.threshold


def check(name, value, *, below=None, above=None, kind="agreement", note=""):
    """A `Check` that `value` lies below (or above) a threshold."""
    if (below is None) == (above is None):
        raise ValueError("give exactly one of `below` and `above`")
    threshold, direction = (below, "<") if below is not None else (above, ">")
    return Check(name, float(value), float(threshold), direction, kind, note)


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
    def passed(self):
        return bool(self.checks) and all(c.passed for c in self.checks)


class RunStore:
    """Finished runs on disk, one .npz per run, written atomically as soon as the run ends.

    An interrupted sweep resumes: `get` returns the stored arrays of a finished run, so it is not
    recomputed. Keys are file-name-safe strings that encode the run's configuration.
    """

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key):
        safe = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in key)
        return self.root / f"{safe}.npz"

    def get(self, key):
        path = self._path(key)
        if not path.exists():
            return None
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}

    def put(self, key, arrays):
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp.npz")
        os.close(fd)
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
        return path

    def cached(self, key, compute: Callable[[], dict]):
        """The stored run for `key`, or `compute()` stored at once and returned."""
        found = self.get(key)
        if found is not None:
            return found
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.put(key, arrays)
        return arrays


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


def fit_slope(x, y):
    """Least-squares slope of log y against log x (a convergence rate)."""
    x, y = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    return float(np.polyfit(x, y, 1)[0])


def _fmt(v):
    if not np.isfinite(v):
        return str(v)
    return f"{v:.3g}" if (abs(v) >= 1e-3 or v == 0) and abs(v) < 1e4 else f"{v:.2e}"


def write_report(results: list[ScenarioResult], out_dir, *, size, started=None):
    """Write report.md (summary, then each scenario's checks, tables and plots) and results.json."""
    out_dir = Path(out_dir)
    lines = ["# widenet validation report", ""]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    total = sum(r.seconds for r in results)
    lines += [f"Size: `{size}`. Generated {stamp}; scenarios took {total:.0f} s in all.", ""]
    lines += ["| scenario | result | checks passed | time |", "|---|---|---|---|"]
    for r in results:
        ok = sum(c.passed for c in r.checks)
        lines.append(
            f"| [{r.name}](#{r.name}) | {'PASS' if r.passed else 'FAIL'} | {ok}/{len(r.checks)} | {r.seconds:.0f} s |"
        )
    lines.append("")
    for r in results:
        lines += [f"## {r.name}", "", f"**{r.title}** — {'PASS' if r.passed else 'FAIL'}", "", r.claim, ""]
        lines += ["| check | kind | measured | criterion | result |", "|---|---|---|---|---|"]
        for c in r.checks:
            note = f" ({c.note})" if c.note else ""
            name = f"{c.name}{note}".replace("|", "\\|")
            lines.append(
                f"| {name} | {c.kind} | {_fmt(c.value)} | {c.direction} {_fmt(c.threshold)} | {'pass' if c.passed else 'FAIL'} |"
            )
        lines.append("")
        for table in r.tables:
            lines += [table, ""]
        for fig in r.figures:
            lines += [f"![{r.name}]({fig})", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    payload = [
        {**{k: v for k, v in asdict(r).items() if k != "checks"}, "passed": r.passed,
         "checks": [{**asdict(c), "passed": c.passed} for c in r.checks]}
        for r in results
    ]  # fmt: skip
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2))
    return out_dir / "report.md"
