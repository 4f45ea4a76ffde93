import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import SAME_ALGORITHM_RTOL, autol2_reference
from widenet import _nt, data, losses, networks, schedules
from widenet.experiment import train as train_module
from widenet.experiment.train import TrainConfig, batch_indices, train, train_sweep
from widenet.theory import l2_homogeneous as l2h


@pytest.fixture(scope="module")
def setup():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=24, n_test=10)
    net = networks.mlp((32,))
    params = net.init(jax.random.PRNGKey(1), 64)
    return d, net, params


def test_one_gd_step_is_theta_minus_eta_grad_of_loss_plus_l2(setup):
    d, net, params = setup
    eta, lam = 0.01, 0.3
    res = train(net.apply_fn, params, d, TrainConfig(steps=1, record_every=1, n_eigs=0), learning_rate=eta, l2=lam)
    grads = jax.grad(lambda p: losses.mse(net.apply_fn(p, d.x_train), d.y_train))(params)
    want = jax.tree.map(lambda p, g: p - eta * (g + lam * p), params, grads)
    for a, b in zip(jax.tree.leaves(res.final_params), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_records_on_the_time_grid(setup):
    d, net, params = setup
    res = train(net.apply_fn, params, d, TrainConfig(steps=30, record_every=10, n_eigs=2), learning_rate=0.02, l2=0.0)
    np.testing.assert_array_equal(res.steps, [0, 10, 20, 30])
    np.testing.assert_allclose(res.t, 0.02 * res.steps, rtol=1e-14)
    np.testing.assert_allclose(res.train_loss[0], losses.mse(net.apply_fn(params, d.x_train), d.y_train), rtol=1e-14)
    assert res.f_train.shape == (4, 24, 1) and res.f_test.shape == (4, 10, 1)
    emp = np.linalg.eigvalsh(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params))[::-1][:2]
    np.testing.assert_allclose(res.ntk_top[0], emp, rtol=1e-10)
    norm0 = np.sqrt(sum(np.sum(p**2) for p in jax.tree.leaves(params)))
    np.testing.assert_allclose(res.param_norm[0], norm0, rtol=1e-14)
    assert res.diverged_at == -1 and np.all(np.diff(res.train_loss) < 0)


def test_vmapped_sweep_equals_a_loop_of_single_runs(setup):
    d, net, params = setup
    config = TrainConfig(steps=20, record_every=10, n_eigs=1)
    lrs, l2s = jnp.array([0.01, 0.02, 0.03]), jnp.array([0.0, 0.1, 1.0])
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    inits = [networks.mlp((32,)).init(k, 64) for k in keys]
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *inits)
    sweep = train_sweep(net.apply_fn, stacked, d, config, learning_rate=lrs, l2=l2s)
    for i in range(3):
        single = train(net.apply_fn, inits[i], d, config, learning_rate=float(lrs[i]), l2=float(l2s[i]))
        np.testing.assert_allclose(sweep.train_loss[i], single.train_loss, rtol=SAME_ALGORITHM_RTOL)
        np.testing.assert_allclose(sweep.ntk_top[i], single.ntk_top, rtol=1e-10)


def test_runs_in_groups_equal_runs_all_at_once(setup):
    # run_batch=2 on 5 runs: groups of 2, 2 and a remainder of 1, inside one program; SGD keys per run
    d, net, _ = setup
    keys = jax.random.split(jax.random.PRNGKey(3), 5)
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *[net.init(k, 64) for k in keys])
    config = TrainConfig(steps=30, record_every=10, batch_size=8, n_eigs=0)
    kwargs = dict(learning_rate=jnp.linspace(0.01, 0.05, 5), l2=jnp.linspace(0.0, 0.2, 5), key=keys)
    together = train_sweep(net.apply_fn, stacked, d, config, devices=[jax.devices()[0]], **kwargs)
    grouped = train_sweep(net.apply_fn, stacked, d, config, devices=[jax.devices()[0]], run_batch=2, **kwargs)
    np.testing.assert_allclose(grouped.train_loss, together.train_loss, rtol=SAME_ALGORITHM_RTOL)
    for a, b in zip(jax.tree.leaves(grouped.final_params), jax.tree.leaves(together.final_params)):
        np.testing.assert_allclose(a, b, rtol=SAME_ALGORITHM_RTOL, atol=1e-14)
    with pytest.raises(ValueError, match="run_batch"):
        train_sweep(net.apply_fn, stacked, d, config, run_batch=0, **kwargs)


def test_divergence_is_data_with_its_step(setup):
    d, net, params = setup
    stacked = jax.tree.map(lambda p: jnp.stack([p, p]), params)
    res = train_sweep(
        net.apply_fn, stacked, d, TrainConfig(steps=200, record_every=20, n_eigs=0),
        learning_rate=jnp.array([0.01, 50.0]), l2=0.0,
    )  # fmt: skip
    assert res.diverged_at[0] == -1 and 0 < res.diverged_at[1] < 200
    assert np.all(np.isfinite(res.train_loss[0]))
    after = res.steps > res.diverged_at[1]
    assert np.all(np.isnan(res.train_loss[1][after])) and np.all(np.isfinite(res.train_loss[1][~after]))
    assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(res.final_params))


def test_sgd_batches_come_from_the_key_and_the_step_alone(setup):
    d, net, params = setup
    key = jax.random.PRNGKey(7)
    run = lambda k, every: train(  # noqa: E731
        net.apply_fn,
        params,
        d,
        TrainConfig(steps=20, record_every=every, batch_size=6, n_eigs=0),
        learning_rate=0.02,
        key=k,
    )
    a, b, c = run(key, 5), run(key, 20), run(jax.random.PRNGKey(8), 20)
    for x, y in zip(jax.tree.leaves(a.final_params), jax.tree.leaves(b.final_params)):
        np.testing.assert_allclose(x, y, rtol=1e-13)  # chunking (resumption points) changes nothing
    assert not np.allclose(jax.tree.leaves(a.final_params)[0], jax.tree.leaves(c.final_params)[0])


def test_schedules_and_sample_weights(setup):
    d, net, params = setup
    lr = schedules.piecewise_constant([10], [0.01, 0.02])
    res = train(net.apply_fn, params, d, TrainConfig(steps=20, record_every=10, n_eigs=0), learning_rate=lr)
    np.testing.assert_allclose(res.t, [0.0, 0.1, 0.3], rtol=1e-14)
    # zero weight on half of the samples = training on the other half
    weights = jnp.where(jnp.arange(24) < 12, 1.0, 0.0)
    weighted = train(net.apply_fn, params, d, TrainConfig(steps=5, record_every=5, n_eigs=0), learning_rate=0.01,
                     sample_weights=weights)  # fmt: skip
    half = data.Dataset(d.x_train[:12], d.y_train[:12], d.x_test, d.y_test)
    subset = train(net.apply_fn, params, half, TrainConfig(steps=5, record_every=5, n_eigs=0), learning_rate=0.01)
    for x, y in zip(jax.tree.leaves(weighted.final_params), jax.tree.leaves(subset.final_params)):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def test_linearized_network_follows_the_closed_form_as_the_step_shrinks(setup):
    # GD on the linearised network is the Euler discretisation of eq. 1 with the empirical NTK (λ = 0):
    # the gap to the closed form must shrink linearly with η.
    d, net, params = setup
    lin = _nt.linearize(net.apply_fn, params)
    ntk = np.asarray(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params))
    f0 = np.asarray(net.apply_fn(params, d.x_train))
    gaps = []
    for eta in (0.004, 0.002):
        steps = int(round(1.0 / eta))
        res = train(lin, params, d, TrainConfig(steps=steps, record_every=steps // 4, n_eigs=0), learning_rate=eta)
        theory = l2h.mse_solution(res.t, ntk, d.y_train, f0, l2=0.0, k=1.0)
        gaps.append(np.abs(res.f_train - np.asarray(theory.f_train)).max())
    assert gaps[0] < 0.05
    np.testing.assert_allclose(gaps[0] / gaps[1], 2.0, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, config, match",
    [
        ({"learning_rate": -0.1}, {}, "`learning_rate`"),
        ({"learning_rate": 0.1, "l2": -1.0}, {}, "`l2`"),
        ({"learning_rate": 0.1}, {"batch_size": 100}, "`batch_size` must be <="),
        ({"learning_rate": 0.1}, {"batch_size": 4}, "`key` is required"),
        ({"learning_rate": 0.1, "sample_weights": np.ones(5)}, {}, "`sample_weights` must have shape"),
    ],
)
def test_bad_training_input(setup, kwargs, config, match):
    d, net, params = setup
    with pytest.raises(ValueError, match=match):
        train(net.apply_fn, params, d, TrainConfig(steps=2, n_eigs=0, **config), **kwargs)


def test_bad_config():
    with pytest.raises(ValueError, match="`steps`"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="`loss`"):
        TrainConfig(steps=1, loss="hinge")


def test_observables_are_recorded_with_their_step(setup):
    d, net, params = setup
    res = train(
        net.apply_fn, params, d, TrainConfig(steps=4, record_every=2, n_eigs=0), learning_rate=0.01,
        observables={"norm2": lambda p, step: sum(jnp.sum(q**2) for q in jax.tree.leaves(p)), "step": lambda p, step: step},
    )  # fmt: skip
    np.testing.assert_allclose(res.extra["norm2"], res.param_norm**2, rtol=1e-12)
    np.testing.assert_array_equal(res.extra["step"], [0, 2, 4])


def test_steps_need_not_be_a_multiple_of_the_record_interval(setup):
    d, net, params = setup
    a = train(net.apply_fn, params, d, TrainConfig(steps=7, record_every=3, n_eigs=0), learning_rate=0.01)
    b = train(net.apply_fn, params, d, TrainConfig(steps=7, record_every=7, n_eigs=0), learning_rate=0.01)
    np.testing.assert_array_equal(a.steps, [0, 3, 6, 7])
    np.testing.assert_allclose(a.t[-1], 0.07, rtol=1e-14)
    for x, y in zip(jax.tree.leaves(a.final_params), jax.tree.leaves(b.final_params)):
        np.testing.assert_allclose(x, y, rtol=1e-13)


def test_autol2_in_the_trainer_replays_the_rule_on_its_own_measurements(setup):
    """With records at every measurement, the recorded loss and error are what AutoL2 measured: the
    rule replayed on them gives the recorded λ, the updates use it, and λ does decay."""
    d, net, params = setup
    every, steps = 4, 400
    rule = schedules.auto_l2(2.0, factor=4.0, refractory=1.0, measure_every=every)
    config = TrainConfig(steps=steps, record_every=every, n_eigs=0, record_outputs=False)
    res = train(net.apply_fn, params, d, config, learning_rate=0.02, l2=rule)
    measured = list(zip(res.train_loss[:-1], 1.0 - res.train_accuracy[:-1]))
    expected = autol2_reference(measured, initial=2.0, factor=4.0, refractory=1.0, every=every)
    # the record at step s holds λ after the measurements at steps < s
    np.testing.assert_allclose(res.l2[1:], expected, rtol=1e-15)
    assert res.l2[0] == 2.0 and res.l2[-1] < 2.0 / 4.0
    # the updates use it: the same λ sequence as a plain schedule gives the same parameters
    boundaries = list(range(every, steps, every))
    replay = train(net.apply_fn, params, d, config, learning_rate=0.02,
                   l2=schedules.piecewise_constant(boundaries, expected))  # fmt: skip
    for a, b in zip(jax.tree.leaves(res.final_params), jax.tree.leaves(replay.final_params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # in a vmapped sweep every run keeps its own rule state
    stacked = jax.tree.map(lambda p: jnp.stack([p, p]), params)
    sweep = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.array([0.02, 0.005]), l2=rule)
    np.testing.assert_array_equal(sweep.l2[0], res.l2)
    other = train(net.apply_fn, params, d, config, learning_rate=0.005, l2=rule)
    np.testing.assert_array_equal(sweep.l2[1], other.l2)
    # and the constant-λ run records its λ too
    fixed = train(net.apply_fn, params, d, config, learning_rate=0.02, l2=0.5)
    np.testing.assert_array_equal(fixed.l2, 0.5)


def test_one_sgd_step_uses_n_over_b_times_a_batch_without_replacement(setup):
    """θ1 = θ0 - η((n/b) ∇ Σ_{i∈B} ℓ_i + λθ0), B = `batch_indices(key, 0, n, b)`: b distinct indices."""
    d, net, params = setup
    eta, lam, b, key = 0.01, 0.2, 6, jax.random.PRNGKey(3)
    res = train(net.apply_fn, params, d, TrainConfig(steps=1, record_every=1, batch_size=b, n_eigs=0),
                learning_rate=eta, l2=lam, key=key)  # fmt: skip
    n = d.x_train.shape[0]
    idx = np.asarray(jax.random.choice(jax.random.fold_in(key, 0), n, (b,), replace=False))
    assert len(set(idx.tolist())) == b
    grads = jax.grad(lambda p: losses.mse(net.apply_fn(p, d.x_train[idx]), d.y_train[idx]))(params)
    want = jax.tree.map(lambda p, g: p - eta * ((n / b) * g + lam * p), params, grads)
    for a, w in zip(jax.tree.leaves(res.final_params), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, w, rtol=1e-13)


def test_step_loss_is_the_loss_before_each_update(setup):
    """GD: step_loss[s] is the training loss at the parameters before update s, the `train_loss` record at
    step s (checked against records at every step); sparse records change nothing; a sweep of 2 runs with
    steps not a multiple of the records (the last chunk's no-op steps are dropped)."""
    d, net, params = setup
    stacked = jax.tree.map(lambda p: jnp.stack([p, 0.9 * p]), params)
    kw = dict(learning_rate=jnp.array([0.01, 0.02]), l2=0.1)
    every = train_sweep(net.apply_fn, stacked, d, TrainConfig(steps=11, record_every=1, n_eigs=0), **kw)
    sparse = train_sweep(net.apply_fn, stacked, d, TrainConfig(steps=11, record_every=4, n_eigs=0,
                                                               record_step_loss=True), **kw)  # fmt: skip
    assert every.step_loss is None and sparse.step_loss.shape == (2, 11)
    np.testing.assert_allclose(sparse.step_loss, every.train_loss[:, :-1], rtol=1e-12)
    np.testing.assert_allclose(sparse.step_loss[:, [0, 4, 8]], sparse.train_loss[:, :-1], rtol=1e-12)
    assert sparse.run(1).step_loss.shape == (11,)


def test_step_loss_is_the_weighted_loss_and_the_scaled_batch_loss(setup):
    d, net, params = setup
    weights = jnp.linspace(0.2, 2.0, 24)
    res = train(net.apply_fn, params, d, TrainConfig(steps=6, record_every=3, n_eigs=0, record_step_loss=True),
                learning_rate=0.01, sample_weights=weights)  # fmt: skip
    np.testing.assert_allclose(res.step_loss[[0, 3]], res.weighted_loss[:-1], rtol=1e-12)
    # SGD: (n/b) Σ_{i∈B_s} ℓ_i at the parameters after s updates, B_s = batch_indices(key, s, n, b)
    key, b, n = jax.random.PRNGKey(4), 6, 24
    sgd = lambda steps, **extra: train(net.apply_fn, params, d, TrainConfig(steps=steps, record_every=2, batch_size=b,  # noqa: E731
                                                                            n_eigs=0, **extra), learning_rate=0.02, key=key)  # fmt: skip
    full = sgd(5, record_step_loss=True)
    for s in (0, 3):
        before = params if s == 0 else sgd(s).final_params
        idx = np.asarray(batch_indices(key, s, n, b))
        want = (n / b) * losses.mse(net.apply_fn(before, d.x_train[idx]), d.y_train[idx])
        np.testing.assert_allclose(full.step_loss[s], want, rtol=1e-12)


def test_step_loss_after_a_divergence_is_nan(setup):
    d, net, params = setup
    stacked = jax.tree.map(lambda p: jnp.stack([p, p]), params)
    config = TrainConfig(steps=200, record_every=20, n_eigs=0, record_step_loss=True, divergence_loss=1e6)
    res = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.array([0.01, 50.0]))
    k = res.diverged_at[1]
    assert res.diverged_at[0] == -1 and np.all(np.isfinite(res.step_loss[0]))
    assert np.all(np.isfinite(res.step_loss[1, :k])) and np.all(np.isnan(res.step_loss[1, k + 1 :]))
    assert res.step_loss[1, k] > 1e6  # the loss that marked the divergence, kept (finite here: 6e8 at k = 1)


def test_batches_never_repeat_an_index():
    for step in range(200):
        idx = np.asarray(batch_indices(jax.random.PRNGKey(11), step, 10, 9))
        assert len(set(idx.tolist())) == 9 and idx.min() >= 0 and idx.max() < 10


def test_repeated_calls_compile_once(setup):
    """The network is traced only while a program compiles: a second call with the same static
    configuration and shapes (new parameters, new learning rate, new L2) traces nothing."""
    d, net, params = setup
    traces = []

    def counting_apply(p, x):
        traces.append(x.shape)
        return net.apply_fn(p, x)

    config = TrainConfig(steps=25, record_every=10)
    first = train(counting_apply, params, d, config, learning_rate=0.01, l2=0.1)
    compiled = len(traces)
    assert compiled > 0
    other = networks.mlp((32,)).init(jax.random.PRNGKey(9), 64)
    second = train(counting_apply, other, d, config, learning_rate=0.02, l2=0.3)
    assert len(traces) == compiled, f"{len(traces) - compiled} new traces on a repeated call"
    assert not np.array_equal(first.train_loss, second.train_loss)
    again = train(counting_apply, params, d, config, learning_rate=0.01, l2=0.1)
    assert np.array_equal(first.train_loss, again.train_loss) and len(traces) == compiled


def test_a_data_set_without_test_points_trains_a_single_run():
    """n_test = 0: the test records are NaN, in the single-run path as in a sweep (it used to fail)."""
    d = data.digits(key=jax.random.PRNGKey(0), n_train=6, n_test=0)
    net = networks.mlp((8,))
    res = train(net.apply_fn, net.init(jax.random.PRNGKey(1), d.x_train.shape[1]), d,
                TrainConfig(steps=3, record_every=1, record_outputs=False), learning_rate=0.1)  # fmt: skip
    assert np.isnan(res.test_loss).all() and np.isfinite(res.train_loss).all()


def test_sweep_cost_counts_the_flops_of_a_linear_model_by_hand_and_trains_nothing():
    # f = x w on n points in d dimensions: one GD step is the forward matmul (2nd FLOPs) and the
    # gradient x^T r (2nd), plus O(n + d) elementwise work; per run, so R runs cost R times that
    n, d_in = 64, 32
    d = data.gaussian(jax.random.PRNGKey(0), n, d_in, n_test=8)
    apply_fn = lambda p, x: x @ p["w"]  # noqa: E731
    config = TrainConfig(steps=100, record_every=10, record_outputs=False)
    costs = {}
    for runs in (1, 4):
        params = {"w": jnp.ones((runs, d_in, 1))}
        costs[runs] = train_module.sweep_cost(apply_fn, params, d, config, learning_rate=jnp.full(runs, 0.01))
        np.testing.assert_array_equal(params["w"], 1.0)  # nothing trained in place (nor anywhere)
    one, four = costs[1], costs[4]
    assert (one.runs, one.steps, one.records) == (1, 100, 10)
    assert 4 * n * d_in <= one.flops_per_step <= 1.1 * 4 * n * d_in, one.flops_per_step
    assert four.flops_per_step == pytest.approx(4 * one.flops_per_step, rel=0.01)
    assert one.flops == one.steps * one.flops_per_step + (one.records + 1) * one.flops_per_record
    data_bytes = 8 * (n * d_in + n + 8 * d_in + 8)
    assert one.memory_bytes >= data_bytes + 8 * d_in  # the data and the parameters, at least
    assert four.memory_bytes - one.memory_bytes >= 3 * 8 * d_in  # three more runs' parameters
    assert one.seconds_at(1e9) == pytest.approx(one.flops / 1e9)
    with pytest.raises(ValueError, match="flop_rate"):
        one.seconds_at(0.0)
    # trained in groups (run_batch: a lax.map, whose body XLA counts once) the arithmetic is the same
    for group in (1, 3):
        grouped = train_module.sweep_cost(apply_fn, {"w": jnp.ones((4, d_in, 1))}, d, config,
                                          learning_rate=jnp.full(4, 0.01), run_batch=group)  # fmt: skip
        assert grouped.flops_per_step == pytest.approx(four.flops_per_step, rel=1e-6), group
    # records in blocks (progress=True: 50 blocks of 2 here) stay on the device until the end, so the
    # sweep holds about what one block of all 100 records holds (XLA's
    # temporaries differ between the two programs and between jax releases, 11% on jax 0.12)
    long = TrainConfig(steps=1000, record_every=10, record_outputs=False)
    whole, blocked = (train_module.sweep_cost(apply_fn, {"w": jnp.ones((4, d_in, 1))}, d, long,
                                              learning_rate=jnp.full(4, 0.01), progress=watch)
                      for watch in (False, lambda *_: None))  # fmt: skip
    assert 0.75 * whole.memory_bytes <= blocked.memory_bytes <= 1.25 * whole.memory_bytes
