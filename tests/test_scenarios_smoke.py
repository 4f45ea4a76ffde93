"""Every scenario runs end to end at its "smoke" size: runs, stores, checks, plots and the report.

Verdicts at this size mean nothing (thresholds are decided at the default size by the harness);
what is tested is that each scenario's machinery executes, reports finite or explicitly
INCONCLUSIVE checks, writes its figures, and resumes from its stored runs without recomputing.
"""

import json

import pytest

from validate.__main__ import main
from validate.scenarios import ALL

# harness machinery, not jax-version specific: .ci/run's second (newest-jax) leg deselects it
pytestmark = pytest.mark.harness


@pytest.mark.parametrize("module", ALL, ids=lambda m: m.NAME)
def test_scenario_runs_at_smoke_size_and_resumes(module, tmp_path, capsys):
    out = tmp_path / "report"
    main(["--only", module.NAME, "--size", "smoke", "--out", str(out)])
    first = json.loads((out / "results.json").read_text())["scenarios"]
    assert [r["name"] for r in first] == [module.NAME]
    result = first[0]
    assert result["checks"], "a scenario must report checks"
    for figure in result["figures"]:
        assert (out / figure).exists() and (out / figure).stat().st_size > 1000
    stored = sorted(p.name for p in (out / "runs").iterdir())
    capsys.readouterr()
    main(["--only", module.NAME, "--size", "smoke", "--out", str(out)])  # resumes: nothing recomputed
    assert sorted(p.name for p in (out / "runs").iterdir()) == stored
    again = json.loads((out / "results.json").read_text())["scenarios"][0]
    assert json.dumps([c["value"] for c in again["checks"]]) == json.dumps([c["value"] for c in result["checks"]])
