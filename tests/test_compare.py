"""The comparison API: eq. 3 beside a user's own network at several widths and seeds."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from widenet import compare, data, networks, results

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_mean_interval_is_the_student_t_interval():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, low, high = compare.mean_interval(values)
    # t_{0.975, 3} = 3.182446305284263; s = 1.2909944487358056; s/sqrt(4) = 0.6454972243679028
    assert mean == 2.5 and high - mean == pytest.approx(3.182446305284263 * 0.6454972243679028, rel=1e-12)
    assert low == pytest.approx(2 * mean - high, rel=1e-15)
    assert compare.mean_interval(np.array([1.0]))[1] == -np.inf  # one seed bounds nothing


def test_l2_mse_compares_eq3_and_the_linear_model_on_each_runs_own_grid():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=12, n_test=6)
    comp = compare.l2_mse(lambda w: networks.mlp((w,)), d, widths=(16, 64), seeds=3, learning_rate=0.04, l2=0.2,
                          steps=60, records=6, key=jax.random.PRNGKey(1))  # fmt: skip
    assert comp.k == 2.0 and comp.t.shape == (2, 3, 7) and comp.measured["train"].shape == (2, 3, 7)
    np.testing.assert_allclose(comp.t[..., 0], 0.0)
    np.testing.assert_allclose(comp.theory["train"][..., 0], comp.measured["train"][..., 0], rtol=1e-12)  # same f0
    agreement = comp.agreement()
    assert set(agreement) == {16, 64}
    mean, low, high = agreement[64]["theory"]
    assert low <= mean <= high and mean < agreement[64]["linear"][0]
    ds = comp.to_xarray()
    assert ds["measured_train_loss"].dims == ("width", "seed", "record") and list(ds["width"].values) == [16, 64]


def test_a_non_homogeneous_network_is_refused():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=8, n_test=4)
    with pytest.raises(ValueError, match="not homogeneous"):
        compare.l2_mse(lambda w: networks.mlp((w,), b_std=0.1), d, widths=(8,), seeds=2, learning_rate=0.01,
                       l2=0.1, steps=5, key=jax.random.PRNGKey(0))  # fmt: skip


def test_the_compare_example_runs_saves_reloads_and_plots(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "compare_l2.py"), "--small", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "compare_l2.png").stat().st_size > 10_000
    ds = results.load(tmp_path / "compare_l2.nc")
    assert ds.sizes["width"] == 3 and ds.sizes["seed"] == 5 and ds.attrs["kind"] == "widenet.L2Comparison"


def test_catapult_gd_runs_each_seed_at_its_own_critical_rate_and_reads_phases(tmp_path):
    from widenet.experiment.train import TrainConfig, train

    d = data.digits(key=jax.random.PRNGKey(0), n_train=10, n_test=0)
    make = lambda w: networks.mlp((w,))  # noqa: E731
    products = (0.5, 3.0, 40.0)
    comp = compare.catapult_gd(make, d, widths=(32,), seeds=2, products=products, steps=40, key=jax.random.PRNGKey(3))
    assert comp.train_loss.shape == (1, 2, 3, 41) and comp.lambda0.shape == (1, 2)
    # independent route: the seed's λ0 from a dense NTK, and plain `train` at η = x / λ0
    net = make(32)
    key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(3), 32), 2)[1]
    params = net.init(key, d.x_train.shape[1])
    lam0 = float(np.linalg.eigvalsh(np.asarray(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params)))[-1])
    assert comp.lambda0[0, 1] == pytest.approx(lam0, rel=1e-12)
    alone = train(net.apply_fn, params, d, TrainConfig(steps=40, record_every=1, record_outputs=False),
                  learning_rate=3.0 / lam0)  # fmt: skip
    np.testing.assert_allclose(comp.train_loss[0, 1, 1], alone.train_loss, rtol=1e-11)
    phases = comp.measured_phases()
    assert (phases[0, :, 0] == "lazy").all()  # far below 2/λ0 the loss only falls
    assert list(comp.predicted_phases("uv")) == ["lazy", "catapult", "divergent"]
    assert list(comp.predicted_phases("linear")) == ["lazy", "divergent", "divergent"]
    share = comp.agreement()[32]
    for theory in ("uv", "linear"):
        mean, low, high = share[theory]
        assert 0.0 <= mean <= 1.0 and low <= mean <= high
    # the measured share is what the phases say, seed by seed
    by_seed = (phases[0] == comp.predicted_phases("uv")).mean(axis=-1)
    assert share["uv"][0] == pytest.approx(by_seed.mean())
    ds = comp.to_xarray()
    assert ds["train_loss"].dims == ("width", "seed", "product", "record")
    results.save(ds, tmp_path / "cat.nc")
    again = results.load(tmp_path / "cat.nc")
    np.testing.assert_array_equal(again["train_loss"].values, comp.train_loss)
    path = comp.plot(tmp_path / "cat.png")
    assert path.stat().st_size > 10_000 and (tmp_path / "cat.pdf").stat().st_size > 5_000


def test_growth_per_cycle_and_the_crossing_recover_known_rates():
    g = 0.37
    loss = 2.0 * np.exp(2 * g * np.arange(12))  # residual grows by e^g per cycle, loss by e^{2g}
    assert compare.growth_per_cycle(loss) == pytest.approx(g, rel=1e-12)
    ratios = np.linspace(0.8, 1.2, 9)
    growth = 2.0 * (ratios - 1.05)  # linear in the ratio: crosses 0 at 1.05
    assert compare.boundary_crossing(ratios, growth) == pytest.approx(1.05, rel=1e-12)
    assert np.isnan(compare.boundary_crossing(ratios, -np.ones(9)))  # no run grows: not bracketed
    with pytest.raises(ValueError, match="`growth`"):
        compare.boundary_crossing(ratios, growth[:3])


def test_floquet_comparison_measures_each_networks_own_multiplier(tmp_path):
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=(8, 3, 3), n_classes=3)
    make = lambda w: networks.mlp((w,), 3, b_std=1.0)  # noqa: E731
    ratios = np.linspace(0.7, 1.2, 11)
    comp = compare.floquet(make, d, widths=(64,), seeds=2, period=2, amplitude=30.0, ratios=ratios, cycles=40,
                           key=jax.random.PRNGKey(1))  # fmt: skip
    assert comp.growth.shape == (1, 2, 11) and comp.own_log_radius.shape == (1, 2, 11)
    # the lazy model is the network's linearisation: where the unstable multiplier dominates, the
    # measured growth per cycle is its log modulus (below ~1 per cycle: faster growth reaches the
    # reading cap while transients still count)
    clear = (comp.own_log_radius > 0.1) & (comp.own_log_radius < 1.2)
    assert clear.sum() >= 4
    np.testing.assert_allclose(comp.growth[clear], comp.own_log_radius[clear], rtol=1e-2)
    assert (comp.growth[comp.own_log_radius < -0.05] < 0).all()
    agreement = comp.agreement()[64]
    assert set(agreement) == {"floquet", "own", "static"}
    assert comp.to_xarray()["growth"].dims == ("width", "seed", "ratio")
    path = comp.plot(tmp_path / "floquet.png")
    assert path.stat().st_size > 10_000 and (tmp_path / "floquet.pdf").exists()


def test_l2_with_a_constant_schedule_takes_the_ode_route_and_matches_eq3():
    """Independent routes: λ given as a schedule goes through the ODE of eq. 1, a constant through eq. 3."""
    d = data.digits(key=jax.random.PRNGKey(0), n_train=10, n_test=5)
    common = dict(widths=(16,), seeds=2, learning_rate=0.05, steps=20, records=4, key=jax.random.PRNGKey(2))
    closed = compare.l2_mse(lambda w: networks.mlp((w,)), d, l2=0.2, **common)
    scheduled = compare.l2(lambda w: networks.mlp((w,)), d, l2=lambda step: 0.2, **common)
    assert closed.config["route"] == "eq. 3" and scheduled.config["route"] == "eq. 1 (ODE)"
    np.testing.assert_array_equal(scheduled.measured["train"], closed.measured["train"])
    for which in ("theory", "linear"):
        for split in ("train", "test"):
            np.testing.assert_allclose(getattr(scheduled, which)[split], getattr(closed, which)[split], rtol=1e-9)
    assert np.isnan(scheduled.loss_minimum_time).all()


def test_l2_with_cross_entropy_and_a_step_schedule():
    from widenet import schedules

    d = data.digits(key=jax.random.PRNGKey(0), n_train=12, n_test=6, target="one_hot")
    schedule = schedules.piecewise_constant([20], [0.3, 0.05])
    comp = compare.l2(lambda w: networks.mlp((w,), 10), d, widths=(16, 128), seeds=2, learning_rate=0.05, l2=schedule,
                      steps=60, records=6, key=jax.random.PRNGKey(1), loss="cross_entropy")  # fmt: skip
    np.testing.assert_allclose(comp.theory["train"][..., 0], comp.measured["train"][..., 0], rtol=1e-12)  # same f0
    mean, low, high = comp.agreement()[128]["theory"]
    assert low <= mean <= high and mean < comp.agreement()[128]["linear"][0]  # the kernel's decay matters
    assert comp.to_xarray()["measured_train_loss"].attrs["units"] == "Σ cross-entropy"
    with pytest.raises(ValueError, match="AutoL2"):
        compare.l2(lambda w: networks.mlp((w,), 10), d, widths=(8,), seeds=1, learning_rate=0.05,
                   l2=schedules.auto_l2(), steps=4, key=jax.random.PRNGKey(0))  # fmt: skip


def test_the_l2_schedule_in_time_is_the_one_the_trainer_applied():
    """compare.l2 maps a schedule in steps to time as λ(floor(t/η)); the trainer records λ(step)."""
    from widenet import schedules
    from widenet.compare._l2 import _l2_of_time
    from widenet.experiment.train import TrainConfig, train

    d = data.digits(key=jax.random.PRNGKey(0), n_train=6, n_test=0)
    net = networks.mlp((8,))
    schedule = schedules.piecewise_constant([3, 7], [0.3, 0.1, 0.02])
    res = train(net.apply_fn, net.init(jax.random.PRNGKey(1), 64), d, TrainConfig(steps=12, record_every=1),
                learning_rate=0.05, l2=schedule)  # fmt: skip
    mapped = np.array([float(_l2_of_time(schedule, 0.05)(t)) for t in res.t])
    np.testing.assert_array_equal(mapped, res.l2)
    # an off-by-one (λ of the next step) would differ at the switches
    assert not np.array_equal(np.array([float(schedule(s + 1)) for s in res.steps]), res.l2)


def test_catapult_gd_takes_lambda0_from_the_full_kernel_for_several_outputs():
    """For ½Σ‖f - y‖² with C outputs GD's edge is 2/λ_max of the (nC, nC) kernel, which exceeds the
    output-averaged kernel's λ_max."""
    d = data.digits(key=jax.random.PRNGKey(0), n_train=8, n_test=0, target="one_hot")
    make = lambda w: networks.mlp((w,), 10)  # noqa: E731
    comp = compare.catapult_gd(make, d, widths=(16,), seeds=1, products=(0.5,), steps=2, key=jax.random.PRNGKey(4))
    net = make(16)
    params = net.init(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(4), 16), 1)[0], 64)
    full = np.asarray(networks.empirical_ntk_full(net.apply_fn)(d.x_train, None, params))
    n, c = full.shape[0], full.shape[2]
    want = np.linalg.eigvalsh(full.transpose(0, 2, 1, 3).reshape(n * c, n * c))[-1]
    averaged = np.linalg.eigvalsh(np.asarray(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params)))[-1]
    assert comp.lambda0[0, 0] == pytest.approx(want, rel=1e-10) and want > averaged * (1 + 1e-6)


def test_seeds_whose_statistic_is_undefined_are_left_out_of_the_agreement():
    from widenet.compare._stats import defined_interval

    assert defined_interval([0.1, np.nan, 0.3, np.inf]) == pytest.approx(compare.mean_interval(np.array([0.1, 0.3])))
    mean, low, high = defined_interval([np.nan, np.nan])
    assert np.isnan(mean) and low == -np.inf and high == np.inf
