"""Dynamical (oscillating class-weight) losses in the linearised regime: function-space theory vs
the linearised network trained with the same schedule, Gauss-Newton sharpness vs the measured
Hessian (Lanczos), and Lanczos vs dense eigendecomposition."""

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from widenet import _nt, data, harness, losses, networks, plots, schedules, spectra
from widenet.experiment.train import TrainConfig, train
from widenet.theory import oscillatory

NAME = "oscillatory_linearized"
TITLE = "Dynamical loss, linearised: function-space theory, Gauss-Newton sharpness, Lanczos"
CLAIM = (
    "For a network in its linearised regime, GD on the dynamical loss F_t = Σ Γ_{y_i}(t) ℓ_CE is "
    "f_{t+1} = f_t - η Θ ∇_f F_t exactly (Θ the full output kernel); the top Hessian eigenvalue is the "
    "Gauss-Newton sharpness λ_max(Θ^½ H_ℓ(f, Γ_t) Θ^½), so η·λ_max > 2 predicts when the dynamics are "
    "locally unstable. Lanczos (order 10, full reorthogonalisation) measures it on Hessian-vector products."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(per_class=6, width=32, period=4, amplitude=70.0, steps=24, record=4),
    "default": dict(per_class=30, width=256, period=40, amplitude=70.0, steps=480, record=4),
    "paper": dict(per_class=100, width=1024, period=500, amplitude=70.0, steps=6000, record=25),
}


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=cfg["per_class"], n_classes=3)
    x, labels = d.x_train, d.labels_train
    net = networks.mlp((cfg["width"],), 3, b_std=1.0)
    params = net.init(jax.random.PRNGKey(1), 2)
    lin = _nt.linearize(net.apply_fn, params)
    kernel = networks.empirical_ntk_full(net.apply_fn)(x, None, params)
    f0 = net.apply_fn(params, x)
    period, amp, steps = cfg["period"], cfg["amplitude"], cfg["steps"]
    gamma = lambda s: schedules.class_weights(s, n_classes=3, period=period, amplitude=amp)[labels]  # noqa: E731
    weights = jax.vmap(gamma)(jnp.arange(steps))
    # η = 3 · 2/λ_GN at init (Γ = 1): the curvature falls as the softmax saturates and rises again
    # with the class emphasis, so the trajectory crosses η λ_GN = 2 repeatedly
    eta = 3.0 * 2.0 / float(oscillatory.gauss_newton_sharpness(kernel, f0, jnp.ones(len(labels))))
    theory = oscillatory.function_space_gd(kernel, f0, d.y_train, weights, learning_rate=eta)
    traced = oscillatory.function_space_gd(
        kernel.trace(axis1=2, axis2=3) / 3, f0, d.y_train, weights, learning_rate=eta
    )
    config = TrainConfig(
        steps=steps, record_every=cfg["record"], loss="cross_entropy", n_eigs=0, n_hessian_eigs=3, lanczos_order=10
    )
    res = train(lin, params, d, config, learning_rate=eta, sample_weights=gamma)
    rec = res.steps
    f_theory = np.asarray(theory)[rec]
    err = np.abs(res.f_train - f_theory).max()
    sharp = np.array(
        [float(oscillatory.gauss_newton_sharpness(kernel, f_theory[i], gamma(s))) for i, s in enumerate(rec)]
    )
    measured = res.hessian_top[:, 0]
    sharp_err = np.max(np.abs(measured - sharp) / sharp)
    predicted_unstable, measured_unstable = eta * sharp > 2.0, eta * measured > 2.0
    union = np.sum(predicted_unstable | measured_unstable)
    jaccard = 1.0 if union == 0 else np.sum(predicted_unstable & measured_unstable) / union
    # Lanczos vs dense on the paper's 603-parameter network (2 -> 100 -> 3 with biases)
    small = networks.mlp((100,), 3, b_std=1.0)
    p_small = small.init(jax.random.PRNGKey(2), 2)
    flat, unravel = ravel_pytree(p_small)
    ce = lambda p: losses.cross_entropy(small.apply_fn(p, x), d.y_train) / len(labels)  # noqa: E731
    dense = np.linalg.eigvalsh(jax.hessian(lambda v: ce(unravel(v)))(flat))
    top10 = spectra.hessian_top_eigenvalues(ce, p_small, k=3, order=10, key=jax.random.PRNGKey(3))
    result.checks += [
        harness.check("max |linearised network - function-space GD| (logits)", err, below=1e-10),
        harness.check("max rel. |Lanczos Hessian λ_max - Gauss-Newton sharpness| on the record grid", sharp_err, below=1e-6),
        harness.check("Jaccard index of predicted vs measured unstable records (η·λ_max > 2)", jaccard, above=0.999,
                      note=f"{int(predicted_unstable.sum())} of {len(rec)} records predicted unstable"),
        harness.check("records predicted unstable (the schedule must cross 2/η)", predicted_unstable.sum(), above=0.5),
        harness.check(f"Lanczos order 10 vs dense eigh, top eigenvalue ({flat.size} parameters), rel.",
                      abs(float(top10[0]) / dense[-1] - 1), below=1e-6),
        harness.check("control: traced kernel Θ⊗I instead of the full output kernel, max logit error",
                      np.abs(np.asarray(traced)[rec] - res.f_train).max(), above=1e-3, kind="control"),
    ]  # fmt: skip
    t = rec
    panels = [
        {"title": "dynamical loss F and plain cross-entropy (linearised net)", "xlabel": "step", "ylabel": "loss",
         "experiment": [("F (weighted)", t, res.weighted_loss), ("plain CE", t, res.train_loss)],
         "vlines": [(None, k * period) for k in range(1, steps // period)]},
        {"title": "η λ_max: Lanczos on the Hessian vs Gauss-Newton theory", "xlabel": "step", "ylabel": "η λ_max",
         "theory": [("η λ_GN (theory)", t, eta * sharp)], "experiment": [("η λ_max(H) (Lanczos, order 10)", t, eta * measured)],
         "hlines": [("2", 2.0)]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("oscillatory_linearized.png"), panels, title=TITLE)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.tables.append(
        f"Spiral 3 x {cfg['per_class']}, 2 -> {cfg['width']} -> 3 ReLU with biases, linearised at init; triangle class "
        f"weights, T = {period}, A = {amp}; η = {eta:.4g} (3 · 2/λ_GN at init with Γ = 1)."
    )
    result.seconds = time.perf_counter() - started
    return result
