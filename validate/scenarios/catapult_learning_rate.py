"""Feature learning against the learning rate (catapult slides, Sec. 3): GD through the lazy, catapult
and divergent ranges of ηλ0 on rank-2 regression, AGOP alignment and test loss at the end, against the
linearised model trained to the same time."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, observables, plots
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import catapult

NAME = "catapult_learning_rate"
TITLE = "AGOP alignment and test loss against the GD learning rate: lazy, catapult, divergent"
CLAIM = (
    "GD on a 2-layer ReLU net (rank-2 regression f* = x1x2) is lazy for ηλ0 < 2, catapults for 2 < ηλ0 < 4 "
    "and diverges above (the uv model's window, catapult slides; NOTES.md: also measured for wide 2-layer "
    "ReLU nets). The catapults drive feature learning: runs that catapult end with a higher AGOP alignment "
    "cos(G, G*) and a lower test loss than lazy runs of the same seed. Rival: the kernel regime, the "
    "linearised model trained by GD to the same time t = η·steps (at a stable step where η is not), whose "
    "gain from the longer time must be measurably smaller."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n=48, n_test=48, dim=8, width=32, steps=40, seeds=2, products=(1.0, 2.5, 3.0, 5.0), kernel_points=48),
    "default": dict(n=800, n_test=800, dim=50, width=256, steps=1000, seeds=5, products=(1.0, 1.9, 2.5, 3.0, 3.5, 4.5),
                    kernel_points=200),
    "paper": dict(n=2000, n_test=2000, dim=100, width=1024, steps=5000, seeds=8,
                  products=(0.5, 1.0, 1.5, 1.9, 2.2, 2.5, 3.0, 3.5, 4.5, 6.0), kernel_points=400),
}  # fmt: skip

_RECORD_EVERY = 2  # a catapult's loss rise lasts several steps at these widths (it grows ~log n steps)
_STABLE = 1.9  # the linearised rival's step where η λ0 > 1.9: stable (< 2) and as fast as allowed


def _expected_phase(product):
    """The uv model's phase for ηλ0 (catapult slides; NOTES.md)."""
    return "lazy" if product < 2 else ("catapult" if product < 4 else "divergent")


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    seeds, products, dim = cfg["seeds"], np.asarray(cfg["products"], dtype=float), cfg["dim"]
    P = len(products)
    net = networks.mlp((cfg["width"],))
    d = data.rank_k_regression(jax.random.PRNGKey(0), cfg["n"], n_test=cfg["n_test"], d=dim, task="rank2")
    inits = [net.init(k, dim) for k in jax.random.split(jax.random.PRNGKey(1), seeds)]
    ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
    lam0 = np.array([float(jnp.linalg.eigvalsh(ntk(d.x_train, None, p))[-1]) for p in inits])
    xk = d.x_train[: cfg["kernel_points"]]  # the kernel's drop is read on a subset (its top eigenvalue)
    g_star = observables.true_agop("rank2", dim)
    var_y = float(np.var(d.y_test))
    tag = f"{NAME}_d{dim}_n{cfg['n']}_w{cfg['width']}_steps{cfg['steps']}_s{seeds}_p{'-'.join(f'{p:g}' for p in products)}"

    def network_runs():  # seed-major: run r = seed r // P, product index r % P
        params = jax.tree.map(lambda *a: jnp.stack(a), *[inits[s] for s in range(seeds) for _ in products])
        eta = jnp.asarray((products[None, :] / lam0[:, None]).ravel())
        config = TrainConfig(steps=cfg["steps"], record_every=_RECORD_EVERY, record_outputs=False)
        # the records need the training loss only; the test set is read once, at the end (recorded every
        # _RECORD_EVERY steps until 2026-12-07: the scenario took 60 s with it, 57 s without, the same numbers)
        train_only = dataclasses.replace(d, x_test=d.x_test[:0], y_test=d.y_test[:0], labels_test=None)
        res = train_sweep(net.apply_fn, params, train_only, config, learning_rate=eta,
                          progress=f"  {seeds} seeds x {P} rates", run_batch=1)  # fmt: skip
        final = res.final_params
        test_mse, agops = jax.jit(jax.vmap(lambda p: (jnp.mean((net.apply_fn(p, d.x_test) - d.y_test) ** 2),
                                                      observables.agop(net.apply_fn, p, d.x_test))))(final)  # fmt: skip
        lam_sub = lambda p: jnp.linalg.eigvalsh(ntk(xk, None, p))[-1]  # noqa: E731
        return {
            "train_loss": np.asarray(res.train_loss), "diverged_at": np.asarray(res.diverged_at),
            "test_mse": np.where(np.asarray(res.diverged_at) >= 0, np.nan, np.asarray(test_mse)),  # diverged: NaN
            "alignment": np.array([float(observables.agop_alignment(g, g_star)) for g in agops]),
            "lam_start": np.array([float(lam_sub(inits[r // P])) for r in range(seeds * P)]),
            "lam_end": np.array([float(lam_sub(jax.tree.map(lambda a, r=r: a[r], final))) for r in range(seeds * P)]),
        }  # fmt: skip

    def linear_runs():
        """The linearised model at the same time t = η·steps, by GD at min(η, 1.9/λ0) (exact closed form)."""
        lin = networks.linearized(net.apply_fn)
        out = {"test_mse": [], "alignment": []}
        for s, p0 in enumerate(inits):
            for prod in products:
                step = min(prod, _STABLE) / lam0[s]
                n_steps = int(round(prod / lam0[s] * cfg["steps"] / step))
                p = networks.linearized_gd_params(
                    net.apply_fn, p0, d.x_train, d.y_train, learning_rate=step, steps=n_steps
                )
                out["test_mse"].append(float(jnp.mean((lin(p, d.x_test) - d.y_test) ** 2)))
                out["alignment"].append(float(observables.agop_alignment(observables.agop(lin, p, d.x_test), g_star)))
        return {k: np.array(v) for k, v in out.items()}

    ctx.log(f"  {seeds} seeds x ηλ0 in {products.tolist()}: GD for {cfg['steps']} steps (one at a time, compiled once)")
    net_out = ctx.store.cached(tag, network_runs)
    ctx.log("  the linearised model to the same times (closed form)")
    lin_out = ctx.store.cached(f"{tag}_linearized", linear_runs)

    shape = (seeds, P)
    phases = catapult.measured_phase(net_out["train_loss"], net_out["diverged_at"], lambda_start=net_out["lam_start"],
                                     lambda_end=net_out["lam_end"]).reshape(shape)  # fmt: skip
    expected = np.array([_expected_phase(p) for p in products])
    align, test = net_out["alignment"].reshape(shape), net_out["test_mse"].reshape(shape) / var_y
    lin_align, lin_test = lin_out["alignment"].reshape(shape), lin_out["test_mse"].reshape(shape) / var_y
    drop = (net_out["lam_end"] / net_out["lam_start"]).reshape(shape)

    def gain(values, seed_phases):
        """Per seed: mean over its catapult runs minus mean over its lazy runs (NaN if either is missing)."""
        out = np.full(seeds, np.nan)
        for s in range(seeds):
            cat, lazy = seed_phases[s] == "catapult", seed_phases[s] == "lazy"
            if cat.any() and lazy.any():
                out[s] = values[s, cat].mean() - values[s, lazy].mean()
        return out

    net_gain, net_test_gain = gain(align, phases), gain(test, phases)
    lin_gain = gain(lin_align, phases)  # the rival on the same runs (grouped by the network's phases)
    missing = "a seed without both a lazy and a catapult run (measured phases)"
    result.checks += [
        harness.count_check("runs whose measured phase is not the uv window's for their ηλ0 (seeds x ηλ0)",
                            phases != expected[None, :],
                            note="phase by the dynamics: loss above L(0) then back, λ_max(end) < λ_max(0); "
                                 f"mismatches: {', '.join(f'ηλ0 = {products[j]:g}: {phases[s, j]}' for s, j in zip(*np.where(phases != expected[None, :]))) or 'none'}"),
        harness.seed_check("AGOP alignment: catapult runs minus lazy runs (per seed)", net_gain, above=0.0,
                           undefined=missing, note=f"lazy {np.nanmean(np.where(phases == 'lazy', align, np.nan)):.3f}, "
                           f"catapult {np.nanmean(np.where(phases == 'catapult', align, np.nan)):.3f}"),
        harness.seed_check("test MSE / Var(y): catapult runs minus lazy runs (per seed)", net_test_gain, below=0.0,
                           undefined=missing),
        harness.seed_check("control: alignment gain of the network minus the linearised model's at the same times",
                           net_gain - lin_gain, above=0.0, kind="control", undefined=missing,
                           note=f"linearised gain {np.nanmean(lin_gain):+.3f}: the kernel regime given the same "
                                "training time t = η·steps"),
    ]  # fmt: skip

    def cell(v):
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return "undefined"
        m, lo, hi = harness.seed_interval(v)
        return f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if v.size > 1 else f"{m:.3f}"

    rows = []
    for j, prod in enumerate(products):
        ok = phases[:, j] != "divergent"
        counts = ", ".join(f"{(phases[:, j] == ph).sum()} {ph}" for ph in catapult.PHASES if (phases[:, j] == ph).any())
        rows.append(f"| {prod:g} | {counts} | {cell(align[ok, j])} | {cell(test[ok, j])} | {cell(drop[ok, j])} | "
                    f"{cell(lin_align[:, j])} | {cell(lin_test[:, j])} |")  # fmt: skip
    result.tables.append(
        f"Rank-2 regression, d = {dim}, n = {cfg['n']}, 2-layer ReLU width {cfg['width']}, GD for {cfg['steps']} steps "
        f"at η = ηλ0/λ0 (each seed's own λ0), {seeds} seeds; mean [95% t-interval] over the seeds that did not "
        "diverge. λ_end/λ_0: top NTK eigenvalue on the first "
        f"{cfg['kernel_points']} training points. Linearised: GD to the same t = η·steps at min(η, {_STABLE}/λ0).\n\n"
        "| ηλ0 | measured phases | AGOP alignment | test MSE / Var(y) | λ_end/λ_0 | linearised alignment | "
        "linearised test MSE / Var(y) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    ok = phases != "divergent"
    masked = lambda v: np.where(ok, v, np.nan)  # noqa: E731
    panels = []
    for values, lin_values, ylabel, name in ((align, lin_align, "cos(G, G*)", "AGOP alignment"),
                                             (test, lin_test, "test MSE / Var(y)", "test MSE")):  # fmt: skip
        kept = masked(values)
        counts = np.isfinite(kept).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(kept, axis=0) / np.maximum(counts, 1), np.nan)  # NaN where all diverged
        panels.append({
            "title": f"{name} after {cfg['steps']} GD steps ({seeds} seeds)", "xlabel": "η λ0", "ylabel": ylabel,
            "experiment": [("network, each seed" if s == 0 else None, products, masked(values)[s],
                            {"color": "C0", "alpha": 0.35, "ms": 3}) for s in range(seeds)]
                          + [("network, mean (diverged runs left out)", products, mean, {"color": "C0", "lw": 2})],
            "theory": [("rival: linearised model at the same t = η·steps", products, lin_values.mean(axis=0),
                        {"color": "C2", "ls": "--", "marker": "s", "ms": 4})],
            "vlines": [("uv window (2, 4)/λ0", 2.0), (None, 4.0)],
        })  # fmt: skip
    fig = plots.curves(ctx.figure_path(f"{NAME}.png"), panels, title=TITLE, width=5.0)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
