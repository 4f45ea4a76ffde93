"""Multiple catapults with an increasing learning-rate schedule (catapult slides, "Multiple
catapults"): every step up of η past 2/λ_max(NTK) gives a loss spike and a drop of λ_max."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots, schedules
from widenet.experiment.train import TrainConfig, train

NAME = "catapult_multiple"
TITLE = "Multiple catapults: each increase of η past 2/λ_max gives a spike and a drop of λ_max"
CLAIM = (
    "With an increasing learning-rate schedule, each stage whose η exceeds 2/λ_max(K) at its start "
    "catapults: the loss spikes and λ_max falls below 2/η; stages with η below 2/λ_max stay lazy. "
    "The initial kernel alone (linear theory) would call the later stages divergent."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(width=64, stage=20, factors=(1.0, 2.5, 4.5)),
    "default": dict(width=1024, stage=150, factors=(1.0, 2.5, 3.5, 4.5, 6.0)),
    "paper": dict(width=4096, stage=400, factors=(1.0, 2.5, 3.5, 4.5, 6.0, 8.0)),
}


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.digits(key=jax.random.PRNGKey(0), n_train=128, n_test=32)
    net = networks.mlp((cfg["width"],))
    params = net.init(jax.random.PRNGKey(2), 64)
    lam0 = float(jnp.linalg.eigvalsh(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params))[-1])
    etas = np.asarray(cfg["factors"]) / lam0
    stage, n_stages = cfg["stage"], len(etas)
    boundaries = [stage * (i + 1) for i in range(n_stages - 1)]

    def compute():
        res = train(net.apply_fn, params, d, TrainConfig(steps=stage * n_stages, record_every=1, n_eigs=1, record_outputs=False),
                    learning_rate=schedules.piecewise_constant(boundaries, list(etas)), progress=True)  # fmt: skip
        return {"loss": res.train_loss, "top": res.ntk_top[:, 0], "diverged_at": res.diverged_at}

    run = ctx.store.cached(f"catapult_multiple_w{cfg['width']}_stage{stage}_{n_stages}", compute)
    loss, top = run["loss"], run["top"]
    predicted, measured, below, rows = [], [], [], []
    for i, eta in enumerate(etas):
        a, b = i * stage, (i + 1) * stage
        will = bool(eta * top[a] > 2.0)  # theory: catapult iff η exceeds 2/λ_max at the stage's start
        spiked = bool(np.max(loss[a + 1 : b + 1]) > loss[a])
        predicted.append(will)
        measured.append(spiked)
        below.append(eta * top[b] < 2.0)
        rows.append(f"| {i} | {eta * lam0:.2f} | {eta * top[a]:.3f} | {'catapult' if will else 'lazy'} | "
                    f"{'spike' if spiked else 'none'} | {np.max(loss[a + 1 : b + 1]) / loss[a]:.3g} | {eta * top[b]:.3f} |")  # fmt: skip
    predicted, measured = np.array(predicted), np.array(measured)
    result.checks += [
        harness.check("stages whose spike/no-spike matches η·λ_max(start) > 2 (fraction)", np.mean(predicted == measured), above=0.99),
        harness.check("catapult stages among them", predicted.sum(), above=1.5, note="a schedule with at least 2 catapults"),
        harness.check("stages ending with η·λ_max < 2 (fraction)", np.mean(below), above=0.99),
        harness.check("control: share of stages with η λ0 > 2 that did not diverge (initial-kernel theory says they do)",
                      np.mean(run["diverged_at"] < 0) if np.any(etas * lam0 > 2) else 0.0, above=0.5, kind="control"),
    ]  # fmt: skip
    result.tables.append(
        "| stage | η λ0 | η λ_max at start | predicted | measured | max L / L(start) | η λ_max at end |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    steps = np.arange(len(loss))
    eta_steps = np.asarray(schedules.piecewise_constant(boundaries, list(etas))(steps))
    panels = [
        {"title": "training loss", "xlabel": "step", "ylabel": "½Σ(f - y)²", "yscale": "log", "experiment": [("GD", steps, loss)],
         "vlines": [(None, b) for b in boundaries]},
        {"title": "λ_max(NTK) and 2/η", "xlabel": "step", "ylabel": "λ", "yscale": "log",
         "experiment": [("λ_max", steps, top)], "theory": [("2/η(step)", steps, 2.0 / eta_steps)]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("catapult_multiple.png"), panels, title=TITLE)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
