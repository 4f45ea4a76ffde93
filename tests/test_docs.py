"""The API reference and guides build without a warning (`mkdocs build --strict`)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_documentation_builds_strictly(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "theory" / "index.html").read_text()
    # the reference is built from the docstrings: a formula's function and its equation are there
    assert "mode_solution" in api and "eq. 3" in api
    assert "gd_solution" in api and "gamma_table" in api
