"""Every script of the examples gallery (docs/examples/) runs at its small size and writes its figure."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "symbolic_modes.py": "symbolic_modes.png",
    "catapult_phases.py": "catapult_phases.png",
    "floquet_boundary.py": "floquet_boundary.png",
    "agop.py": "agop.png",
}


def test_the_gallery_lists_every_example():
    scripts = {p.name for p in (ROOT / "docs" / "examples").glob("*.py")}
    assert scripts == set(EXAMPLES) | {"compare_l2.py"}  # compare_l2: tests/test_compare.py
    page = (ROOT / "docs" / "examples.md").read_text()
    assert all(name in page for name in scripts)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_small_and_writes_its_figure(script, tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / script), "--small", "--out", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    figure = tmp_path / EXAMPLES[script]
    assert figure.stat().st_size > 10_000
    assert "figure:" in out.stdout
