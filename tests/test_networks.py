import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import _nt, networks


@pytest.mark.parametrize(
    "hidden, kwargs, degree",
    [((64,), {}, 2.0), ((32, 32), {}, 3.0), ((16, 16, 16), {"activation": "identity"}, 4.0),
     ((64,), {"activation": "leaky_relu"}, 2.0), ((64,), {"b_std": 0.1}, None), ((64,), {"activation": "erf"}, None)],
)  # fmt: skip
def test_structural_degree_agrees_with_measured_degree(hidden, kwargs, degree):
    net = networks.mlp(hidden, 2, **kwargs)
    key = jax.random.PRNGKey(0)
    params = net.init(key, 5)
    x = jax.random.normal(key, (7, 5))
    assert net.degree == degree
    assert networks.measure_degree(net.apply_fn, params, x) == degree


def test_from_stax_measures_the_degree_of_any_stax_network():
    key = jax.random.PRNGKey(1)
    stax = _nt.stax
    homogeneous = stax.serial(
        stax.Dense(32, parameterization="ntk"), stax.Relu(), stax.Dense(1, parameterization="ntk")
    )
    assert networks.from_stax(homogeneous, 1, key=key, input_dim=4).degree == 2.0
    # a first-layer bias scales with the weights (f is still 2-homogeneous in all parameters) ...
    first_bias = stax.serial(
        stax.Dense(32, b_std=0.5, parameterization="ntk"), stax.Relu(), stax.Dense(1, parameterization="ntk")
    )
    assert networks.from_stax(first_bias, 1, key=key, input_dim=4).degree == 2.0
    # ... a readout bias does not: f(aθ) = a² W relu(...) + a b
    last_bias = stax.serial(
        stax.Dense(32, parameterization="ntk"), stax.Relu(), stax.Dense(1, b_std=0.5, parameterization="ntk")
    )
    assert networks.from_stax(last_bias, 1, key=key, input_dim=4).degree is None
    tanh_like = stax.serial(stax.Dense(32, parameterization="ntk"), stax.Erf(), stax.Dense(1, parameterization="ntk"))
    assert networks.from_stax(tanh_like, 1, key=key, input_dim=4).degree is None


def test_empirical_ntk_is_the_output_averaged_jacobian_gram():
    key = jax.random.PRNGKey(2)
    net = networks.mlp((48,), 3)
    params = net.init(key, 4)
    x = jax.random.normal(key, (5, 4))
    jac = jax.jacobian(lambda p: net.apply_fn(p, x))(params)
    flat = jnp.concatenate([j.reshape(5, 3, -1) for j in jax.tree.leaves(jac)], axis=-1)
    want = jnp.einsum("icp,jcp->ij", flat, flat) / 3
    np.testing.assert_allclose(networks.empirical_ntk(net.apply_fn)(x, None, params), want, rtol=1e-12)


def test_empirical_ntk_approaches_the_analytic_kernel_with_width():
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (6, 8))
    errors = []
    for width in (64, 4096):
        net = networks.mlp((width,))
        emp = np.mean(
            [networks.empirical_ntk(net.apply_fn)(x, None, net.init(k, 8)) for k in jax.random.split(key, 4)], axis=0
        )
        ana = net.ntk(x)
        errors.append(np.abs(emp - ana).max() / np.abs(ana).max())
    assert errors[1] < 0.05 and errors[1] < errors[0]


def test_bad_network_arguments():
    with pytest.raises(ValueError, match="`activation` must be one of"):
        networks.mlp((8,), activation="swish")
    with pytest.raises(ValueError, match="`hidden` must lie in"):
        networks.mlp((0,))


def test_standard_parameterization_keeps_the_degree():
    net = networks.mlp((64,), parameterization="standard")
    params = net.init(jax.random.PRNGKey(5), 4)
    x = jax.random.normal(jax.random.PRNGKey(6), (5, 4))
    assert net.degree == 2.0 and networks.measure_degree(net.apply_fn, params, x) == 2.0
    # standard parameterisation stores the 1/sqrt(fan_in) in the weights: W ~ N(0, 1/4) here
    assert abs(float(jnp.std(params[0][0])) - 0.5) < 0.05
    with pytest.raises(ValueError, match="`parameterization`"):
        networks.mlp((8,), parameterization="mup")


def test_lazy_model_is_the_network_with_its_residual_scaled_down():
    """GD on L(g) with rate η/α² equals GD with rate η on f with targets f0 + y/α (the defining
    identity), g(θ0) = 0, θ0 does not move, and large α gives the linearised network's trajectory."""
    net = networks.mlp((32,), 2, b_std=1.0)
    params0 = net.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    f0 = net.apply_fn(params0, x)
    sq = lambda f, t: 0.5 * jnp.sum((f - t) ** 2)  # noqa: E731
    kernel = networks.empirical_ntk_full(net.apply_fn)(x, None, params0).transpose(0, 2, 1, 3).reshape(12, 12)
    eta = 1.0 / float(jnp.linalg.eigvalsh(kernel)[-1])

    def run(alpha, steps=40):
        g = networks.lazy(net.apply_fn, alpha)

        @jax.jit  # one compiled step per α: the loop itself stays plain Python
        def step(p, q):
            gp = jax.grad(lambda p: sq(g(p, x), y))(p)
            gq = jax.grad(lambda q: sq(net.apply_fn(q, x), f0 + y / alpha))(q)
            return jax.tree.map(lambda a, b: a - eta / alpha**2 * b, p, gp), jax.tree.map(lambda a, b: a - eta * b, q, gq)

        p, q = networks.lazy_params(params0), params0
        for _ in range(steps):
            p, q = step(p, q)
        return g, p, q

    g, p, q = run(3.0)
    assert float(jnp.abs(networks.lazy(net.apply_fn, 3.0)(networks.lazy_params(params0), x)).max()) == 0.0
    np.testing.assert_allclose(g(p, x), 3.0 * (net.apply_fn(q, x) - f0), rtol=1e-10, atol=1e-12)
    for a, b in zip(jax.tree.leaves(p[1]), jax.tree.leaves(params0)):
        np.testing.assert_array_equal(a, b)
    # towards the linearised network: the gap to it shrinks as α grows (measured: 0.022 -> 0.0004)
    lin = _nt.linearize(net.apply_fn, params0)

    def run_linear(alpha, steps=40):
        @jax.jit
        def step(q):
            grads = jax.grad(lambda q: sq(alpha * (lin(q, x) - f0), y))(q)
            return jax.tree.map(lambda a, b: a - eta / alpha**2 * b, q, grads)

        q = params0
        for _ in range(steps):
            q = step(q)
        return alpha * (lin(q, x) - f0)

    gaps = []
    for alpha in (10.0, 100.0):
        g, p, _ = run(alpha)
        gaps.append(float(jnp.abs(g(p, x) - run_linear(alpha)).max()))
    assert gaps[1] < gaps[0] / 5 and gaps[1] < 1e-2, gaps
    with pytest.raises(ValueError, match="`alpha` must lie in"):
        networks.lazy(net.apply_fn, 0.0)


def test_linearized_model_is_neural_tangents_linearize_and_keeps_theta0_fixed_under_vmapped_sgd():
    """Independent route: `neural_tangents.linearize` (its own jvp closure over one θ0) at a moved θ;
    θ0's gradient is exactly 0, and a 2-seed vmapped sweep equals each seed's own NT model."""
    from widenet.data import Dataset
    from widenet.experiment.train import TrainConfig, train_sweep

    net = networks.mlp((32,), 2, b_std=0.5)
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    seeds = [net.init(k, 3) for k in jax.random.split(jax.random.PRNGKey(0), 2)]
    moved = jax.tree.map(lambda a: a + 0.3 * jnp.cos(a), seeds[0])
    lin = networks.linearized(net.apply_fn)
    np.testing.assert_allclose(
        lin((moved, seeds[0]), x), _nt.linearize(net.apply_fn, seeds[0])(moved, x), rtol=1e-12, atol=1e-12
    )
    g0 = jax.grad(lambda p: jnp.sum(lin(p, x) ** 2))((moved, seeds[0]))[1]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g0))

    stacked = jax.tree.map(lambda *a: jnp.stack(a), *seeds)
    d = Dataset(x, y, x[:2], y[:2], name="t")
    cfg = TrainConfig(steps=12, record_every=4, batch_size=3, record_outputs=False)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    swept = train_sweep(lin, networks.lazy_params(stacked), d, cfg, learning_rate=jnp.array([0.2, 0.3]), key=keys)
    for i, p0 in enumerate(seeds):
        own = train_sweep(_nt.linearize(net.apply_fn, p0), jax.tree.map(lambda a: a[None], p0), d, cfg,
                          learning_rate=jnp.array([0.2, 0.3][i : i + 1]), key=keys[i : i + 1])  # fmt: skip
        np.testing.assert_allclose(swept.train_loss[i], own.train_loss[0], rtol=1e-10)
        for a, b in zip(jax.tree.leaves(swept.final_params[1]), jax.tree.leaves(p0)):
            np.testing.assert_array_equal(a[i], b)


def test_linearized_gd_params_are_the_iterated_linear_model_at_every_step_count():
    """Closed form against the scanned trainer on `linearized` (two outputs, η on both sides of 2/λ_max)."""
    from widenet.data import Dataset
    from widenet.experiment.train import TrainConfig, train_sweep

    net = networks.mlp((24,), 2, b_std=0.5)
    p0 = net.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (7, 2))
    kernel = networks.empirical_ntk_full(net.apply_fn)(x, None, p0).transpose(0, 2, 1, 3).reshape(14, 14)
    lam = float(jnp.linalg.eigvalsh(kernel)[-1])
    lin = networks.linearized(net.apply_fn)
    d = Dataset(x, y, x[:2], y[:2], name="t")
    for factor, steps in ((1.5, 40), (2.1, 9)):
        res = train_sweep(lin, networks.lazy_params(jax.tree.map(lambda a: a[None], p0)), d,
                          TrainConfig(steps=steps, record_every=steps, record_outputs=False), learning_rate=jnp.array([factor / lam]))  # fmt: skip
        exact = networks.linearized_gd_params(net.apply_fn, p0, x, y, learning_rate=factor / lam, steps=steps)
        for a, b in zip(jax.tree.leaves(exact), jax.tree.leaves(res.final_params)):
            np.testing.assert_allclose(a, b[0], rtol=1e-10, atol=1e-10)
    same = networks.linearized_gd_params(net.apply_fn, p0, x, y, learning_rate=0.1, steps=0)
    for a, b in zip(jax.tree.leaves(same[0]), jax.tree.leaves(p0)):
        np.testing.assert_allclose(a, b, atol=1e-14)


def test_quadratic_model_with_theta0_as_parameter_is_taylor_expand_and_keeps_theta0_fixed():
    """Independent route: neural-tangents' `taylor_expand(apply_fn, θ0, 2)` at a moved θ; θ0 gets no gradient."""
    from widenet.theory import catapult

    net = networks.mlp((16, 16), 2, b_std=0.3)
    p0 = net.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    moved = jax.tree.map(lambda a: a + 0.2 * jnp.sin(3 * a), p0)
    quad = networks.quadratic(net.apply_fn)
    np.testing.assert_allclose(quad((moved, p0), x), catapult.quadratic_model(net.apply_fn, p0)(moved, x), rtol=1e-12, atol=1e-12)
    g0 = jax.grad(lambda p: jnp.sum(quad(p, x) ** 2))((moved, p0))[1]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g0))
    # the gradient in θ (what training uses), not only the value
    ours = jax.grad(lambda q: jnp.sum(quad((q, p0), x) ** 2))(moved)
    theirs = jax.grad(lambda q: jnp.sum(catapult.quadratic_model(net.apply_fn, p0)(q, x) ** 2))(moved)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_scale_invariant_network_l2_is_exactly_an_exponentially_growing_learning_rate():
    """f(aθ) = f(θ), measure_degree = 0, and the Li-Arora identity behind the L2 paper's k = 0 case:
    GD with L2 λ is GD without L2 at η_s = η(1 - ηλ)^{-2s-1}, with θ_s = (1 - ηλ)^s θ̃_s; both runs
    through widenet's trainer (an L2 array against a learning-rate schedule)."""
    from widenet.data import Dataset
    from widenet.experiment.train import TrainConfig, train_sweep

    net = networks.scale_invariant(networks.mlp((32,), 2))
    p0 = net.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    assert net.degree == 0.0 and networks.measure_degree(net.apply_fn, p0, x) == 0.0
    np.testing.assert_allclose(net.apply_fn(jax.tree.map(lambda a: 3.7 * a, p0), x), net.apply_fn(p0, x), rtol=1e-13)
    d = Dataset(x, y, x[:2], y[:2], name="t")
    eta, lam, steps = 0.05, 0.4, 30
    cfg = TrainConfig(steps=steps, record_every=steps, record_outputs=False)
    stacked = jax.tree.map(lambda a: a[None], p0)
    with_l2 = train_sweep(net.apply_fn, stacked, d, cfg, learning_rate=jnp.array([eta]), l2=jnp.array([lam]))
    growing = train_sweep(net.apply_fn, stacked, d, cfg, learning_rate=lambda s: eta * (1 - eta * lam) ** (-2.0 * s - 1))
    np.testing.assert_allclose(with_l2.train_loss, growing.train_loss, rtol=1e-10)
    shrink = (1 - eta * lam) ** steps
    for a, b in zip(jax.tree.leaves(with_l2.final_params), jax.tree.leaves(growing.final_params)):
        np.testing.assert_allclose(a, shrink * b, rtol=1e-10, atol=1e-13)
    with pytest.raises(TypeError, match="`network`"):
        networks.scale_invariant(net.apply_fn)
    with pytest.raises(ValueError, match="`radius`"):
        networks.scale_invariant(net, radius=0.0)


def test_scale_invariant_ntk_is_the_projected_inner_kernel_and_scales_as_a_to_the_minus_2():
    """Independent route for the k = 0 kernel: J_f = (r/|θ|) J_h(ψ)(I - θ̂θ̂ᵀ) at ψ = rθ̂, so
    Θ_f = (r/|θ|)² [Θ_h(ψ) - v vᵀ] with v = J_h(ψ)θ̂ (one jvp); and Θ_f(aθ) = a^{-2} Θ_f(θ) (eq. 2's
    e^{2λt} growth as L2 shrinks |θ|). neural-tangents' implementation 1 against implementation 3 on h."""
    inner = networks.mlp((48,), 1)
    net = networks.scale_invariant(inner)
    p = jax.tree.map(lambda a: 1.3 * a, inner.init(jax.random.PRNGKey(0), 4))  # |θ| != r
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    leaves = jax.tree.leaves(p)
    r = np.sqrt(sum(leaf.size for leaf in leaves))
    norm = float(jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in leaves)))
    psi = jax.tree.map(lambda a: a * r / norm, p)
    theta_hat = jax.tree.map(lambda a: a / norm, p)
    v = jax.jvp(lambda q: inner.apply_fn(q, x), (psi,), (theta_hat,))[1][:, 0]
    want = (r / norm) ** 2 * (networks.empirical_ntk(inner.apply_fn)(x, None, psi) - jnp.outer(v, v))
    got = networks.empirical_ntk(net.apply_fn, implementation=net.ntk_implementation)(x, None, p)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    scaled = networks.empirical_ntk(net.apply_fn, implementation=1)(x, None, jax.tree.map(lambda a: 0.5 * a, p))
    np.testing.assert_allclose(scaled, 4.0 * got, rtol=1e-10)


def test_cnn_is_the_hand_written_convolution_on_row_major_images():
    """One conv layer (identity activation, bias-free), then Flatten and Dense, against scipy's 2-D
    correlation with zero padding: checks the reshape of flat inputs and the NTK scaling σ/√fan-in."""
    from scipy.signal import correlate2d

    net = networks.cnn((3,), 1, image_shape=(5, 4, 1), activation="identity")
    params = net.init(jax.random.PRNGKey(0), 20)
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (2, 20)))
    (w_conv, _), _, _, (w_dense, _) = params  # bias-free: each layer is (W, None)
    want = []
    for xi in x:
        image = xi.reshape(5, 4)
        maps = np.stack([correlate2d(image, np.asarray(w_conv)[:, :, 0, c], mode="same") / 3.0 for c in range(3)],
                        axis=-1)  # (5, 4, 3): fan-in 3·3·1  # fmt: skip
        want.append(maps.reshape(-1) @ np.asarray(w_dense)[:, 0] / np.sqrt(60))
    np.testing.assert_allclose(net.apply_fn(params, x)[:, 0], want, rtol=1e-12)


@pytest.mark.parametrize("readout", ["flatten", "global_avg"])
def test_cnn_degree_kernel_and_bad_inputs(readout):
    key = jax.random.PRNGKey(4)
    net = networks.cnn((4, 4), 2, image_shape=(4, 4, 1), readout=readout)
    params = net.init(key, 16)
    x = jax.random.normal(key, (3, 16))
    assert net.degree == 3.0 and networks.measure_degree(net.apply_fn, params, x) == 3.0
    assert networks.cnn((4,), b_std=0.1, image_shape=(4, 4, 1)).degree is None
    # the analytic kernel is neural-tangents' on the images, whatever the wrapper does with shapes
    init, apply, kernel = _nt.stax.serial(
        _nt.stax.Conv(4, (3, 3), padding="SAME"),
        _nt.stax.Relu(),
        _nt.stax.Conv(4, (3, 3), padding="SAME"),
        _nt.stax.Relu(),
        _nt.stax.Flatten() if readout == "flatten" else _nt.stax.GlobalAvgPool(),
        _nt.stax.Dense(2),
    )
    images = x.reshape(3, 4, 4, 1)
    np.testing.assert_allclose(net.ntk(x), kernel(images, None, "ntk"), rtol=1e-12)
    np.testing.assert_allclose(net.apply_fn(params, x), apply(params, images), rtol=1e-12)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, 16\)"):
        net.apply_fn(params, x[:, :15])
    with pytest.raises(ValueError, match="`input_dim` must be 16"):
        net.init(key, 15)
    with pytest.raises(ValueError, match="`readout` must be"):
        networks.cnn((4,), readout="max")
    with pytest.raises(ValueError, match="`channels` must"):
        networks.cnn(())


def test_cnn_empirical_ntk_approaches_its_analytic_kernel_with_channels():
    key = jax.random.PRNGKey(5)
    x = jax.random.normal(key, (4, 16))
    errors = []
    for c in (4, 256):
        net = networks.cnn((c,), image_shape=(4, 4, 1))
        emp = np.mean([networks.empirical_ntk(net.apply_fn)(x, None, net.init(k, 16)) for k in jax.random.split(key, 4)],
                      axis=0)  # fmt: skip
        ana = net.ntk(x)
        errors.append(np.abs(emp - ana).max() / np.abs(ana).max())
    assert errors[1] < 0.05 and errors[1] < errors[0]
