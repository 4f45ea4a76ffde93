"""The AGOP of a trained network and its alignment with the target's (catapult slides, Sec. 3).

Train a 2-layer ReLU net on the rank-2 task f*(x) = x1·x2 by GD and by small-batch SGD at the same
learning rate, then compare the average gradient outer product G = (1/n)Σ ∇f ∇fᵀ of each with the
target's G* (`observables.agop`, `observables.agop_alignment`).
`python docs/examples/agop.py [--small] [--out DIR]`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from widenet import data, networks, observables  # noqa: E402
from widenet.experiment.train import TrainConfig, train  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="tiny sizes (seconds; what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
n, dim, width, steps = (64, 10, 32, 50) if args.small else (1000, 100, 256, 2000)

d = data.rank_k_regression(jax.random.PRNGKey(0), n, n_test=n, d=dim, task="rank2")
net = networks.mlp((width,))
params = net.init(jax.random.PRNGKey(1), dim)
lam0 = float(jnp.linalg.eigvalsh(networks.empirical_ntk(net.apply_fn)(d.x_train, None, params))[-1])
g_star = observables.true_agop("rank2", dim)
agops = {"init": observables.agop(net.apply_fn, params, d.x_test)}
for label, batch in (("GD", None), ("SGD, batch 5", 5)):
    config = TrainConfig(steps=steps, record_every=steps, batch_size=batch, n_eigs=0, record_outputs=False)
    res = train(net.apply_fn, params, d, config, learning_rate=1.4 / lam0, key=jax.random.PRNGKey(5))
    agops[label] = observables.agop(net.apply_fn, res.final_params, d.x_test)
for label, g in agops.items():
    print(f"{label:13s} alignment cos(G, G*) = {float(observables.agop_alignment(g, g_star)):.3f}")

shown = 10  # the leading block of the d x d matrices; G* lives in the x1, x2 block
fig = Figure(figsize=(3.2 * (len(agops) + 1), 3.3))
axes = fig.subplots(1, len(agops) + 1)
for ax, (label, g) in zip(axes, list(agops.items()) + [("target G*", g_star)]):
    g = np.asarray(g)[:shown, :shown]
    ax.imshow(g / np.abs(g).max(), cmap="RdBu_r", vmin=-1, vmax=1)
    align = "" if label == "target G*" else f"\ncos(G, G*) = {float(observables.agop_alignment(agops[label], g_star)):.2f}"
    ax.set_title(f"{label}{align}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"AGOP on the first {shown} input coordinates (rank-2 task, d = {dim})", fontsize=10)
path = Path(args.out) / "agop.png"
fig.tight_layout()
fig.savefig(path, dpi=110)
print("figure:", path)
