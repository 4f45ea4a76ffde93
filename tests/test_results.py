"""Results as labelled arrays: TrainResult and theory solutions round-trip through netCDF losslessly."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import data, networks, results
from widenet.experiment.train import TrainConfig, train, train_sweep
from widenet.theory import l2_homogeneous as l2h


@pytest.fixture(scope="module")
def setup():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=16, n_test=6)
    net = networks.mlp((16,))
    params = net.init(jax.random.PRNGKey(1), 64)
    return d, net, params


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_a_sweep_round_trips_with_labels_units_and_config(setup, tmp_path):
    d, net, params = setup
    stacked = jax.tree.map(lambda p: jnp.stack([p, p]), params)
    config = TrainConfig(steps=20, record_every=5, n_eigs=2, record_step_loss=True)
    res = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.array([0.01, 80.0]),
                      observables={"norm0": lambda p, s: jnp.linalg.norm(p[0][0])})  # fmt: skip
    assert res.diverged_at[1] >= 0  # NaN records after divergence must survive too
    ds = results.from_train(res, config=config)
    assert ds["train_loss"].dims == ("run", "record") and ds["ntk_top"].dims == ("run", "record", "ntk_eig")
    assert ds["f_train"].dims == ("run", "record", "train_sample", "output")
    assert ds["step_loss"].dims == ("run", "update") and ds.sizes["update"] == 20
    assert list(ds["step"].values) == [0, 5, 10, 15, 20] and "gradient-flow time" in ds["t"].attrs["units"]
    assert json.loads(ds.attrs["config"])["steps"] == 20
    path = results.save(ds, tmp_path / "sweep.nc")
    again = results.load(path)
    assert again.identical(ds)
    back = results.train_result(again, params_like=stacked)
    for name in (
        "steps",
        "t",
        "train_loss",
        "weighted_loss",
        "l2",
        "test_loss",
        "ntk_top",
        "f_train",
        "f_test",
        "diverged_at",
        "step_loss",
    ):
        assert _same(getattr(back, name), getattr(res, name)), name
    assert _same(back.extra["norm0"], res.extra["norm0"])
    assert jax.tree.structure(back.final_params) == jax.tree.structure(res.final_params)
    for a, b in zip(jax.tree.leaves(back.final_params), jax.tree.leaves(res.final_params)):
        assert _same(a, b)
    assert not list(tmp_path.glob(".partial-*"))


def test_a_single_run_and_a_theory_solution_round_trip(setup, tmp_path):
    d, net, params = setup
    res = train(net.apply_fn, params, d, TrainConfig(steps=6, record_every=3), learning_rate=0.01)
    back = results.train_result(results.load(results.save(results.from_train(res), tmp_path / "one.nc")))
    assert _same(back.train_loss, res.train_loss) and back.ntk_top.shape == res.ntk_top.shape
    assert res.step_loss is None and back.step_loss is None
    assert len(back.final_params) == len(jax.tree.leaves(params))  # leaves without a template
    sol = l2h.mse_solution(jnp.linspace(0, 2, 5), jnp.eye(3) + 0.5, jnp.ones((3, 1)), jnp.zeros((3, 1)), l2=0.1, k=2.0,
                           ntk_test_train=jnp.ones((2, 3)), f0_test=jnp.zeros((2, 1)))  # fmt: skip
    ds = results.from_solution(sol, config={"k": 2.0})
    again = results.solution(results.load(results.save(ds, tmp_path / "sol.nc")))
    assert _same(again.ts, sol.ts) and _same(again.f_train, sol.f_train) and _same(again.f_test, sol.f_test)
    assert again.success is True


def test_a_dataset_of_the_other_kind_is_refused(setup):
    sol = l2h.mse_solution(jnp.linspace(0, 1, 2), jnp.eye(2), jnp.ones((2, 1)), jnp.zeros((2, 1)), l2=0.1, k=2.0)
    with pytest.raises(ValueError, match="`dataset` must hold a widenet.TrainResult"):
        results.train_result(results.from_solution(sol))
