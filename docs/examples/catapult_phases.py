"""The catapult phases of your own network under GD, against the linear theory's 2/λ0.

Sweep η·λ0 (λ0 the top eigenvalue of the network's empirical NTK at init) in one vmapped run,
read each run's phase off its loss (`catapult.measured_phase`) and record where the tangent kernel
ends: after a catapult η·λ_max < 2. `python docs/examples/catapult_phases.py [--small] [--out DIR]`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from widenet import data, networks  # noqa: E402
from widenet.experiment.train import TrainConfig, train_sweep  # noqa: E402
from widenet.theory import catapult  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="tiny sizes (seconds; what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
width, n, steps = (64, 16, 60) if args.small else (1024, 128, 300)
products = np.array([1.5, 1.9, 2.2, 3.0]) if args.small else np.round(np.arange(1.5, 6.01, 0.25), 2)

d = data.digits(key=jax.random.PRNGKey(0), n_train=n, n_test=16)
net = networks.mlp((width,))  # your network: any stax definition through networks.from_stax
params = net.init(jax.random.PRNGKey(1), d.x_train.shape[1])
ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
lam0 = float(jnp.linalg.eigvalsh(ntk(d.x_train, None, params))[-1])
print(f"λ0 = {lam0:.3f}: the linear theory's critical rate 2/λ0 = {2 / lam0:.4g}")

runs = jax.tree.map(lambda p: jnp.broadcast_to(p, (len(products),) + p.shape), params)
config = TrainConfig(steps=steps, record_every=1, n_eigs=0, record_outputs=False, divergence_loss=1e10)
res = train_sweep(net.apply_fn, runs, d, config, learning_rate=jnp.asarray(products / lam0))
phases = catapult.measured_phase(res.train_loss, res.diverged_at)
final_top = np.asarray(jax.vmap(lambda p: jnp.linalg.eigvalsh(ntk(d.x_train, None, p))[-1])(res.final_params))
peak = np.nanmax(res.train_loss, axis=1) / res.train_loss[:, 0]
for x, phase, lam in zip(products, phases, final_top):
    print(f"η·λ0 = {x:5.2f}: {phase:9s} η·λ_max at the end = {x * lam / lam0:.3f}")

fig = Figure(figsize=(9.5, 4.0))
left, right = fig.subplots(1, 2)
colours = {"lazy": "C0", "catapult": "C1", "divergent": "C3"}
for phase, colour in colours.items():
    sel = phases == phase
    left.semilogy(products[sel], peak[sel], "o", color=colour, label=phase)
    right.plot(products[sel], products[sel] * final_top[sel] / lam0, "o", color=colour, label=phase)
for ax in (left, right):
    ax.axvline(2.0, ls="--", color="k", lw=1, label="η = 2/λ0 (linear theory)")
    ax.set_xlabel("η·λ0")
    ax.grid(alpha=0.3)
right.axhline(2.0, ls=":", color="gray", label="η·λ_max = 2")
left.set_ylabel("max loss / initial loss")
right.set_ylabel("η·λ_max(NTK) at the end")
left.legend(fontsize=7)
right.legend(fontsize=7)
fig.suptitle(f"GD phases of a width-{width} ReLU net on {n} digits")
path = Path(args.out) / "catapult_phases.png"
fig.tight_layout()
fig.savefig(path, dpi=110)
print("figure:", path)
