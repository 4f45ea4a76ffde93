"""The performance suite runs from any folder (no import from tests/) and reports every ratio."""

import json
import subprocess
import sys

import pytest

# the performance suite's machinery: .ci/run's second (newest-jax) leg deselects it
pytestmark = pytest.mark.harness


def test_bench_quick_runs_outside_the_repository_and_writes_every_ratio(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "validate.bench", "--quick", "--out", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "bench.json").read_text())
    ratios = results["ratios"]
    for name in (
        "fastest ODE route / closed form, stiff", "fastest ODE route / closed form, narrow",
        "closed form ns per (mode, time) point", "train / warm lax.scan", "train / per-step jitted loop",
        "train / optax loop", "16-run vmapped sweep / 16 sequential train calls",
    ):  # fmt: skip
        assert isinstance(ratios[name], float) and ratios[name] > 0, name
    assert any(k.startswith("dense eigh / Lanczos") for k in ratios)
    assert sum("NT implementation" in k for k in ratios) == 6 and sum("matmul peak" in k for k in ratios) == 2
    assert results["trainer"]["max |train - scan| over parameters"] < 1e-12  # the same updates
    routes = {r["route"] for r in results["closed form vs ODE"]}
    assert {"scipy Radau (exact Jacobian)", "scipy DOP853", "diffrax Dopri8 (vector of modes)"} <= routes
    assert "| ratio | value | goal |" in (tmp_path / "out" / "bench.md").read_text()
