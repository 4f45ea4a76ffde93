"""Loss spikes in SGD (catapult slides, "Mechanism of catapults in SGD"): spikes happen at steps
whose learning rate exceeds that minibatch's critical rate, and live in the top eigenspace of the
tangent kernel."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots
from widenet.experiment.train import TrainConfig, batch_indices, train
from widenet.theory import catapult

NAME = "catapult_sgd"
TITLE = "SGD spikes: per-batch critical learning rates and the top-5 kernel eigenspace"
CLAIM = (
    "In SGD the loss spikes at steps where η exceeds the critical rate of that step's minibatch, "
    "2b/(n λ_max(K_BB)) for widenet's SGD estimate (n/b)Σ_B ½(f - y)²; during a spike the loss lives in "
    "the span of the top-5 eigenvectors of the tangent kernel (PL_5 ≫ PL_5^⊥)."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(width=64, n=32, batch=8, steps=60, factor=1.4),
    "default": dict(width=1024, n=128, batch=16, steps=300, factor=1.4),
    "paper": dict(width=4096, n=512, batch=32, steps=2000, factor=1.4),
}


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    n, b = cfg["n"], cfg["batch"]
    d = data.digits(key=jax.random.PRNGKey(0), n_train=n, n_test=32)
    net = networks.mlp((cfg["width"],))
    params = net.init(jax.random.PRNGKey(3), 64)
    ntk = networks.empirical_ntk(net.apply_fn)
    key = jax.random.PRNGKey(4)
    x, y = jnp.asarray(d.x_train), jnp.asarray(d.y_train)

    def batch_critical(p, step):
        idx = batch_indices(key, step, n, b)
        return catapult.critical_learning_rate(ntk(x[idx], None, p)) * b / n

    def split(p, step):
        kernel = ntk(x, None, p)
        return jnp.stack(catapult.loss_decomposition(kernel, net.apply_fn(p, x) - y, top=5))

    # η: a factor above the median per-batch critical rate at initialisation
    crit0 = np.array([float(batch_critical(params, s)) for s in range(50)])
    eta = cfg["factor"] * float(np.median(crit0))

    def compute():
        res = train(net.apply_fn, params, d, TrainConfig(steps=cfg["steps"], record_every=1, batch_size=b, n_eigs=0, record_outputs=False),
                    learning_rate=eta, key=key, observables={"critical": batch_critical, "split": split}, progress=True)  # fmt: skip
        return {
            "loss": res.train_loss,
            "critical": res.extra["critical"],
            "split": res.extra["split"],
            "diverged_at": res.diverged_at,
        }

    run = ctx.store.cached(f"catapult_sgd_w{cfg['width']}_n{n}_b{b}_steps{cfg['steps']}_f{cfg['factor']}", compute)
    loss, crit, pl = run["loss"], run["critical"], run["split"]
    mean_loss = loss / n  # the slides' (1/n)‖R‖²-normalised loss is 2·this
    # a spike: the full-batch loss grows by more than 50% within one step
    onsets = np.where(loss[1:] > 1.5 * loss[:-1])[0]
    above = eta > crit[onsets]  # critical rate of the batch that step `onset` used
    share_above_all = np.mean(eta > crit[:-1])
    peaks = [o + 1 + int(np.argmax(loss[o + 1 : o + 6])) for o in onsets]
    top_share = pl[peaks, 0] / pl[peaks].sum(axis=1) if peaks else np.array([np.nan])
    quiet = np.setdiff1d(
        np.arange(len(loss)), np.concatenate([np.arange(o, o + 6) for o in onsets]) if len(onsets) else []
    )
    quiet_share = np.median(pl[quiet, 0] / pl[quiet].sum(axis=1))
    result.checks += [
        harness.check("number of spikes (full-batch loss up > 50% in one step)", len(onsets), above=2.5),
        harness.check("share of spikes whose batch had η > its critical rate", np.mean(above) if len(onsets) else 0.0, above=0.9),
        harness.check("control: share of all steps with η > the batch's critical rate", share_above_all, below=0.9, kind="control",
                      note="spikes are not explained by η being above every batch's rate"),
        harness.check("median PL_5 / L at spike peaks", np.median(top_share), above=0.9),
        harness.check("control: median PL_5 / L away from spikes", quiet_share, below=np.median(top_share), kind="control"),
    ]  # fmt: skip
    result.tables.append(
        f"η = {eta:.4g} = {cfg['factor']} × the median per-batch critical rate at init; batch {b} of n = {n}; "
        f"{len(onsets)} spikes; {share_above_all:.0%} of all steps had η above their batch's critical rate; "
        f"median PL_5/L {np.median(top_share):.3f} at spike peaks vs {quiet_share:.3f} elsewhere."
    )
    steps = np.arange(len(loss))
    panels = [
        {"title": "SGD: full-batch loss and its top-5 part", "xlabel": "step", "ylabel": "loss / n", "yscale": "log",
         "experiment": [("L / n", steps, mean_loss), ("PL_5", steps, pl[:, 0]), ("PL_5^⊥", steps, pl[:, 1])],
         "vlines": [(None, o) for o in onsets[:20]]},
        {"title": "η against each batch's critical rate", "xlabel": "step", "ylabel": "learning rate", "yscale": "log",
         "experiment": [("2b/(n λ_max(K_BB))", steps, crit)], "hlines": [("η", eta)]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("catapult_sgd.png"), panels, title=TITLE)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
