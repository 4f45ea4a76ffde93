"""`python -m validate.preflight`: scenarios run with their training compiled and sized, not run."""

import json
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from validate import preflight
from widenet import data, networks
from widenet.experiment import train as train_module
from widenet.experiment.train import TrainConfig

# harness machinery, not jax-version specific: .ci/run's second (newest-jax) leg deselects it
pytestmark = pytest.mark.harness


def _scenario(name, body):
    return types.SimpleNamespace(NAME=name, SIZES={"smoke": {}}, run=body)


def _one_sweep(ctx):
    """A scenario body: one training program, whose stand-in result it then reads."""
    d = data.digits(key=jax.random.PRNGKey(0), n_train=8, n_test=4)
    net = networks.mlp((16,))
    params = jax.tree.map(lambda p: jnp.stack([p, p]), net.init(jax.random.PRNGKey(0), 64))
    config = TrainConfig(steps=20, record_every=5, n_eigs=1)
    res = train_module.train_sweep(net.apply_fn, params, d, config, learning_rate=jnp.array([0.1, 0.2]),
                                   observables={"norm": lambda p, step: jnp.zeros(3)})  # fmt: skip
    assert res.train_loss.shape == (2, 5) and res.ntk_top.shape == (2, 5, 1) and res.extra["norm"].shape == (2, 5, 3)
    assert res.f_train.shape == (2, 5, 8, 1)
    # stand-ins shaped as real curves, so that analyses of minima and log axes go on: a loss minimum inside
    # the run, every record finite and positive
    assert 0 < int(np.argmin(res.train_loss[0])) < 4 and 0 < int(np.argmin(res.test_loss[0])) < 4
    assert all(np.all(np.isfinite(v) & (v > 0)) for v in (res.train_loss, res.test_loss, res.ntk_top, res.param_norm))
    return res


def test_a_setup_error_before_any_training_is_an_error_and_later_ones_are_not(tmp_path):
    original = train_module.train_sweep

    def broken_setup(ctx):
        data.digits(key=jax.random.PRNGKey(0), n_train=1797, n_test=1000)  # more digits than there are

    def fails_on_stand_ins(ctx):
        _one_sweep(ctx)
        raise ValueError("downstream of a stand-in result")

    def refused_program(ctx):  # a second program whose inputs train_sweep would refuse: a bug of this size
        res = _one_sweep(ctx)
        train_module.train_sweep(lambda p, x: x @ p, jnp.ones((2, 64, 1)), data.digits(key=jax.random.PRNGKey(0),
                                 n_train=8, n_test=4), TrainConfig(steps=4), learning_rate=-res.train_loss[:, 0])  # fmt: skip

    def swallows_errors(ctx):  # code that takes every Exception must not take the preflight's alarm
        started = time.perf_counter()
        while time.perf_counter() - started < 3:  # ends "ran to the end" if the alarm were taken
            try:
                sum(range(10**5))
            except Exception:  # noqa: BLE001
                pass

    cases = (("broken", broken_setup), ("later", fails_on_stand_ins), ("fine", _one_sweep),
             ("refused", refused_program))  # fmt: skip
    rows = {name: preflight._check_scenario(_scenario(name, body), "smoke", 60, tmp_path) for name, body in cases}
    rows["greedy"] = preflight._check_scenario(_scenario("greedy", swallows_errors), "smoke", 1, tmp_path)
    assert rows["refused"]["status"] == "ERROR in training program 2" and "learning_rate" in rows["refused"]["error"]
    assert rows["greedy"]["status"] == "timed out after 1 s"
    assert rows["broken"]["status"] == "ERROR before its first training program"
    assert "n_train" in rows["broken"]["error"] and rows["broken"]["programs"] == []
    assert rows["later"]["status"] == "stopped after 1 programs" and "stand-in" in rows["later"]["error"]
    assert rows["fine"]["status"] == "ran to the end" and rows["fine"]["error"] == ""
    program = rows["fine"]["programs"][0]
    assert (program["runs"], program["steps"], program["records"]) == (2, 20, 4)
    assert program["flops_per_step"] > 0 and program["memory_bytes"] > 0
    assert train_module.train_sweep is original  # restored after each scenario


def test_the_command_writes_its_table_and_refuses_an_unknown_scenario(tmp_path, capsys):
    assert preflight.main(["--size", "smoke", "--only", "catapult_uv", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "preflight.json").read_text())["scenarios"]
    assert [r["name"] for r in rows] == ["catapult_uv"] and rows[0]["status"] == "ran to the end"
    assert rows[0]["programs"] and "| catapult_uv | ran to the end |" in (tmp_path / "preflight.md").read_text()
    with pytest.raises(SystemExit):
        preflight.main(["--only", "no_such_scenario"])
