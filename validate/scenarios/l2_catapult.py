"""Large learning rate with L2 (L2 paper, SM C.4): a catapult and the kernel's decay in one run, against
the combined prediction: exactly for the uv model, and for ReLU nets as eq. 1 restarted after the catapult."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import catapult, finite_width
from widenet.theory import l2_homogeneous as l2h

from ._common import relative_error

NAME = "l2_catapult"
TITLE = "L2 paper SM C.4: a catapult and L2 decay in one run, against the combined prediction"
CLAIM = (
    "(A) GD with L2 on the uv network f = vᵀu/√n (x = 1, y = 1) at ηλ0 = 3 catapults (the loss rises above "
    "L(0), λ falls below 2/η) and then decays, exactly as the uv map with L2 says (`catapult.uv_map(l2=)`), "
    "and ends at SM B.1's fixed point f = y - λ√n, λ = 2f/√n; the uv map without L2 (catapult, no decay) "
    "and eq. 2's decay e^{-2λt} from λ0 (decay, no catapult) are the rivals for λ_end. (B) A 2-layer ReLU "
    "net on digits with MSE and L2 at ηλ0 = 3 catapults; after it, its training loss follows GD's map of "
    "eq. 1 (k = 2) restarted from the kernel and outputs the catapult left behind; rival: the same with "
    "k = 1 (no decay). From initialisation eq. 1 has no catapult: its top mode grows until L2's decay brings "
    "η·γ below 2, a transient the networks do not follow."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(uv_width=64, uv_steps=400, n_train=16, n_test=16, width=64, seeds=2, restart=20, horizon=1.0),
    "default": dict(uv_width=512, uv_steps=6000, n_train=128, n_test=256, width=1024, seeds=5, restart=100, horizon=2.0),
    "paper": dict(uv_width=4096, uv_steps=20000, n_train=256, n_test=512, width=8192, seeds=8, restart=150,
                  horizon=2.0),
}  # fmt: skip

PRODUCT = 3.0  # ηλ0: inside the uv catapult window (2, 4)
L2_ROOT_N = 0.5  # (A): λ√n, below SM B.1's threshold λ√n = y = 1
L2 = 0.1  # (B): λ of the digits runs (sum loss), as l2_digits


def _uv(ctx, cfg, result):
    n, seeds = cfg["uv_width"], cfg["seeds"]
    net = networks.mlp((n,), activation="identity")  # f = W2ᵀW1ᵀx/√n: the uv model on x = 1
    inits = [net.init(k, 1) for k in jax.random.split(jax.random.PRNGKey(0), seeds)]
    x = np.ones((1, 1))
    uv_data = data.Dataset(x, np.ones((1, 1)), x, np.ones((1, 1)), name="uv, y = 1")
    kernel = networks.empirical_ntk(net.apply_fn)
    f0 = np.array([float(net.apply_fn(p, x)[0, 0]) for p in inits])
    lam0 = np.array([float(kernel(x, None, p)[0, 0]) for p in inits])
    etas, l2, steps = PRODUCT / lam0, L2_ROOT_N / np.sqrt(n), cfg["uv_steps"]  # ηλ0 = 3 with each init's own λ0
    config = TrainConfig(steps=steps, record_every=1, n_eigs=1, record_outputs=True)
    res = train_sweep(net.apply_fn, jax.tree.map(lambda *q: jnp.stack(q), *inits), uv_data, config,
                      learning_rate=jnp.asarray(etas), l2=jnp.full(seeds, l2))  # fmt: skip
    point = finite_width.linear_fixed_point(x, [1.0], l2=l2, width=n)
    lam_star = float(finite_width.linear_fixed_point_ntk(point, x)[0, 0])
    map_err, half_eta_lam, control_c, end_err, control_end, shown_seed = [], [], [], [], [], None
    for s, eta in enumerate(etas):
        f_net, lam_net = res.f_train[s, :, 0, 0], res.ntk_top[s, :, 0]
        traj = catapult.uv_trajectory(f0[s], lam0[s], learning_rate=eta, width=n, steps=steps, y=1.0, l2=l2)
        no_l2 = catapult.uv_trajectory(f0[s], lam0[s], learning_rate=eta, width=n, steps=steps, y=1.0)
        f_map, lam_map = np.asarray(traj.f), np.asarray(traj.lam)
        loss = 0.5 * (f_net - 1.0) ** 2
        decay = lam0[s] * (1 - eta * l2) ** (2 * np.arange(steps + 1))  # eq. 2 at GD's step: (1 - ηλ)^{2s}
        # the catapult's end: the first step after the loss peak at which the loss is back below L(0)
        peak = int(np.argmax(loss))
        back = np.nonzero(loss[peak:] < loss[0])[0]
        s_c = peak + int(back[0]) if back.size else steps
        map_err.append(max((np.abs(f_net - f_map) / np.maximum(np.abs(f_map), 1.0)).max(),
                           relative_error(lam_net, lam_map).max()))  # fmt: skip
        half_eta_lam.append(eta * lam_net[s_c] / 2)
        # λ's relative error at the catapult's end: eq. 2's decay (no catapult) minus the map's
        control_c.append(abs(decay[s_c] / lam_net[s_c] - 1) - abs(lam_map[s_c] / lam_net[s_c] - 1))
        end_err.append(max(abs(f_net[-1] / point.f_train[0] - 1), abs(lam_net[-1] / lam_star - 1)))
        control_end.append(abs(float(no_l2.lam[-1]) / lam_star - 1) - abs(lam_map[-1] / lam_net[-1] - 1))
        if shown_seed is None:  # the figures show the first init; the checks take every one
            shown_seed = (eta, f_net, lam_net, f_map, lam_map, no_l2, loss, decay)
    runs = f"{seeds} inits, width {n}, ηλ0 = {PRODUCT:g}, λ√n = {L2_ROOT_N:g}, {steps} steps"
    result.checks += [
        harness.check("(A) uv: max rel. error of the trained network against the uv map with L2 (f and λ, every step "
                      "and init)", max(map_err), below=1e-9, n=seeds, note=f"an identity: the maximum over {runs}"),
        harness.count_check("(A) uv: inits whose η·λ/2 at the catapult's end (loss back below L(0) after its peak) is "
                            "not < 1 (a catapult ends below 2/η)", ~(np.asarray(half_eta_lam) < 1.0),
                            note="per init: " + ", ".join(f"{v:.3f}" for v in half_eta_lam)),
        harness.seed_check("(A) control: λ at the catapult's end, eq. 2's decay from λ0 (no catapult) minus the map, "
                           "rel. error", control_c, above=0.0, kind="control",
                           note="per init: " + ", ".join(f"{v:.3f}" for v in control_c)),
        harness.check("(A) uv: end state vs SM B.1's fixed point f = y - λ√n, λ = 2f/√n, max rel. error over inits",
                      max(end_err), below=1e-6, n=seeds, note=f"f* = {point.f_train[0]:.4f}, λ* = {lam_star:.3e}"),
        harness.seed_check("(A) control: λ_end, the uv map without L2 (catapult, no decay) minus the map with L2, "
                           "rel. error", control_end, above=0.0, kind="control"),
    ]  # fmt: skip
    eta, f_net, lam_net, f_map, lam_map, no_l2, loss, decay = shown_seed
    steps_axis = np.arange(steps + 1)
    shown = lambda v, floor: np.where(v > floor, v, np.nan)  # noqa: E731  (rivals drawn down to a floor)
    return [
        {"title": f"(A) uv, width {n} (init 0 of {seeds}): loss ½(f - 1)²", "xlabel": "step", "ylabel": "loss", "xscale": "log",
         "yscale": "log",
         "experiment": [("trained network", steps_axis[1:], loss[1:], {"color": "C0"})],
         "theory": [("uv map with L2", steps_axis[1:], 0.5 * (f_map[1:] - 1) ** 2, {"color": "k", "lw": 1}),
                    ("uv map without L2 (to 1e-6)", steps_axis[1:], shown(0.5 * (np.asarray(no_l2.f)[1:] - 1) ** 2, 1e-6),
                     {"color": "C3", "ls": ":"})]},
        {"title": "(A) uv: tangent kernel λ", "xlabel": "step", "ylabel": "λ", "xscale": "log", "yscale": "log",
         "experiment": [("trained network", steps_axis[1:], lam_net[1:], {"color": "C0"})],
         "theory": [("uv map with L2", steps_axis[1:], lam_map[1:], {"color": "k", "lw": 1}),
                    ("rival: no decay (uv map, λ2 = 0)", steps_axis[1:], np.asarray(no_l2.lam)[1:], {"color": "C3", "ls": ":"}),
                    ("rival: no catapult (eq. 2 from λ0)", steps_axis[1:], shown(decay[1:], 0.01 * lam_star),
                     {"color": "C2", "ls": "--"})],
         "hlines": [("2/η", 2.0 / eta, {"color": "0.5"}), ("SM B.1: λ* = 2f*/√n", lam_star, {"color": "C1"})]},
    ]  # fmt: skip


def _relu(ctx, cfg, result):
    seeds, restart = cfg["seeds"], cfg["restart"]
    net = networks.mlp((cfg["width"],))
    d = data.digits(key=jax.random.PRNGKey(0), n_train=cfg["n_train"], n_test=cfg["n_test"])
    keys = jax.random.split(jax.random.PRNGKey(1000), seeds)
    problems = [harness.build_problem(d, net, key=k, analytic=False) for k in keys]
    lam0 = np.array([float(np.linalg.eigvalsh(p.ntk_train)[-1]) for p in problems])
    eta = PRODUCT / lam0
    steps = max(int(np.ceil(cfg["horizon"] / L2 / eta.min())), 2 * restart)
    params = jax.tree.map(lambda *p: jnp.stack(p), *[p.params0 for p in problems])
    ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
    tag = f"{NAME}_w{cfg['width']}_n{cfg['n_train']}_s{seeds}_restart{restart}_steps{steps}"

    def compute():
        # the catapult, then the rest of the run from the same parameters (GD is deterministic: one run)
        first = train_sweep(net.apply_fn, params, d, TrainConfig(steps=restart, record_every=1, n_eigs=1,
                            record_outputs=False), learning_rate=jnp.asarray(eta), l2=L2)  # fmt: skip
        mid = first.final_params
        rest = train_sweep(net.apply_fn, mid, d, TrainConfig(steps=steps - restart, record_every=5, n_eigs=1,
                           record_outputs=False), learning_rate=jnp.asarray(eta), l2=L2)  # fmt: skip
        take = lambda i: jax.tree.map(lambda a: a[i], mid)  # noqa: E731
        return {
            "early_loss": first.train_loss, "early_lam": first.ntk_top[..., 0], "late_loss": rest.train_loss,
            "late_test": rest.test_loss, "late_lam": rest.ntk_top[..., 0], "late_steps": rest.steps,
            "ntk_c": np.stack([np.asarray(ntk(d.x_train, None, take(i))) for i in range(seeds)]),
            "ntk_xc": np.stack([np.asarray(ntk(d.x_test, d.x_train, take(i))) for i in range(seeds)]),
            "f_c": np.stack([np.asarray(net.apply_fn(take(i), d.x_train)) for i in range(seeds)]),
            "fx_c": np.stack([np.asarray(net.apply_fn(take(i), d.x_test)) for i in range(seeds)]),
            "diverged": np.maximum(first.diverged_at, rest.diverged_at),
        }  # fmt: skip

    ctx.log(f"  digits, width {cfg['width']}: {seeds} seeds at ηλ0 = {PRODUCT:g}, λ = {L2:g}: {restart} + "
            f"{steps - restart} GD steps")  # fmt: skip
    out = ctx.store.cached(tag, compute)
    early, lam_early = np.asarray(out["early_loss"]), np.asarray(out["early_lam"])
    # a catapult: the loss rises above L(0), and by the restart λ_max is below what L2's decay alone
    # leaves of λ0 (GD's (1 - ηλ)^{2s})
    catapulted = (early.max(axis=1) > early[:, 0]) & (lam_early[:, -1] < lam0 * (1 - eta * L2) ** (2 * restart))
    settled = (early[:, -1] < early[:, 0]) & (eta * lam_early[:, -1] < 2.0)  # over by the restart
    err2, err1, err2_min, curves = np.full(seeds, np.nan), np.full(seeds, np.nan), np.full(seeds, np.nan), None
    for s in range(seeds):
        if not settled[s] or out["diverged"][s] >= 0:
            continue
        late = np.asarray(out["late_loss"][s])
        common = dict(learning_rate=float(eta[s]), l2=L2, ntk_test_train=out["ntk_xc"][s], f0_test=out["fx_c"][s])
        th = {k: l2h.gd_solution(np.asarray(out["late_steps"]), out["ntk_c"][s], d.y_train, out["f_c"][s], k=k,
                                 **common) for k in (2.0, 1.0)}  # fmt: skip
        loss = {k: 0.5 * np.sum((np.asarray(v.f_train) - d.y_train) ** 2, axis=(1, 2)) for k, v in th.items()}
        err2[s], err1[s] = relative_error(late, loss[2.0]).max(), relative_error(late, loss[1.0]).max()
        err2_min[s] = relative_error(late, loss[2.0])[: int(np.argmin(late)) + 1].max()  # up to the loss minimum
        if curves is None:
            curves = (restart + np.asarray(out["late_steps"]), late, loss[2.0], loss[1.0], early[s], s)
    unsettled = (
        "the catapult was not over by the restart step (loss above L(0) or ηλ_max >= 2 there), or the run diverged"
    )
    result.checks += [
        harness.count_check("(B) digits: runs that do not catapult (a catapult: loss above L(0); λ_max at the restart "
                            "below λ0 (1 - ηλ)^(2·restart), L2's decay alone)", ~catapulted),
        harness.seed_check(f"(B) after the catapult: max rel. error of the training loss vs GD's map of eq. 1 (k = 2) "
                           f"from the post-catapult Θ and f, to λt = {cfg['horizon']:g}", err2, below=0.1,
                           undefined=unsettled, note=f"restart at step {restart}"),
        harness.seed_check("(B) control: the same for k = 1 (no kernel decay) minus k = 2's", err1 - err2, above=0.0,
                           kind="control", undefined=unsettled),
    ]  # fmt: skip
    result.tables.append(
        f"(B) digits (even/odd, n = {cfg['n_train']}), width {cfg['width']}, ηλ0 = {PRODUCT:g}, λ = {L2:g}, restart at "
        f"step {restart}; per seed: the loss peak over L(0), ηλ_max at the restart, and the training-loss error of eq. 1 "
        "restarted there (k = 2) over the whole window, up to the measured loss minimum only (no check), and of k = 1:\n\n"
        "| seed | peak L/L(0) | ηλ_max at restart | k = 2 error | k = 2 error up to the minimum | k = 1 error |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(f"| {s} | {early[s].max() / early[s, 0]:.3g} | {eta[s] * lam_early[s, -1]:.3f} | {err2[s]:.3f} | "
                    f"{err2_min[s]:.3f} | {err1[s]:.3f} |" for s in range(seeds))
    )  # fmt: skip
    if curves is None:
        return []
    steps_late, late, th2, th1, early_s, s = curves
    return [
        {"title": f"(B) digits, width {cfg['width']} (seed {s}): training loss", "xlabel": "step", "ylabel": "½Σ(f - y)²",
         "xscale": "log", "yscale": "log",
         "experiment": [("trained network", np.arange(1, restart + 1), early_s[1:], {"color": "C0"}),
                        (None, steps_late, late, {"color": "C0"})],
         "theory": [("eq. 1 (k = 2) from the post-catapult state", steps_late, th2, {"color": "k", "lw": 1}),
                    ("rival k = 1 from the same state", steps_late, th1, {"color": "C3", "ls": "--"})],
         "vlines": [("restart", restart)]},
    ]  # fmt: skip


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    ctx.log(f"  uv network, width {cfg['uv_width']}, ηλ0 = {PRODUCT:g}, λ√n = {L2_ROOT_N:g}")
    panels = _uv(ctx, cfg, result) + _relu(ctx, cfg, result)
    fig = plots.curves(ctx.figure_path(f"{NAME}.png"), panels, title=TITLE, width=4.8)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
