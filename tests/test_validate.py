import json

from validate.__main__ import main
from validate.scenarios import ALL


def test_harness_runs_a_scenario_and_writes_the_report(tmp_path):
    assert main(["--only", "l2_modes", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "l2_modes" in text and "PASS" in text and (tmp_path / "figures" / "l2_modes.png").exists()
    checks = json.loads((tmp_path / "results.json").read_text())["scenarios"][0]["checks"]
    assert {c["kind"] for c in checks} >= {"agreement", "control"}


def test_every_scenario_states_its_claim():
    for module in ALL:
        assert module.NAME and module.TITLE and len(module.CLAIM) > 40 and callable(module.run)


def test_only_adds_to_an_existing_report_and_rejects_an_unwritable_folder(tmp_path, capsys):
    from widenet import harness

    earlier = harness.ScenarioResult("catapult_uv", "uv", "A claim about uv.", [harness.check("x", 0.1, below=1.0)])
    harness.write_report([earlier], tmp_path, size="default")
    assert main(["--only", "l2_modes", "--out", str(tmp_path)]) == 0
    names = [r["name"] for r in json.loads((tmp_path / "results.json").read_text())["scenarios"]]
    assert names == ["l2_modes", "catapult_uv"]  # merged, in the harness's order
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert main(["--only", "l2_modes", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write to the output folder" in err[0]
