import json

from validate.__main__ import main
from validate.scenarios import ALL


def test_harness_runs_a_scenario_and_writes_the_report(tmp_path):
    assert main(["--only", "l2_modes", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "l2_modes" in text and "PASS" in text and (tmp_path / "figures" / "l2_modes.png").exists()
    checks = json.loads((tmp_path / "results.json").read_text())[0]["checks"]
    assert {c["kind"] for c in checks} >= {"agreement", "control"}


def test_every_scenario_states_its_claim():
    for module in ALL:
        assert module.NAME and module.TITLE and len(module.CLAIM) > 40 and callable(module.run)
