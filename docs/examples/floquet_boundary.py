"""A class-weight schedule and its Floquet stability boundary η*(T, A) for weighted MSE.

Weights Γ_c(t) emphasise one class per period T (`schedules.class_weights`); a full cycle of the
weights is C·T steps, and the period map over that cycle gives the Floquet multipliers of the
linearised residual dynamics. η* is where the largest one leaves the unit circle
(`oscillatory.stability_boundary`), against the static GD edge 2/λ_max.
`python docs/examples/floquet_boundary.py [--small] [--out DIR]`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from widenet import data, networks  # noqa: E402
from widenet.theory import oscillatory  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="tiny sizes (seconds; what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
per_class, periods, amplitudes = (4, (2, 8), (1.0, 30.0)) if args.small else (20, (2, 4, 8, 16, 32), (1.0, 10.0, 30.0, 70.0))

counts = (3 * per_class, per_class, per_class)  # imbalanced 60/20/20: class emphasis moves η*
d = data.spiral(jax.random.PRNGKey(0), n_per_class=counts, n_classes=3)
labels = np.asarray(d.labels_train)
net = networks.mlp((512,), 3, b_std=1.0)  # the analytic NTK of this stax definition
kernel = np.asarray(net.kernel_fn(d.x_train, None, "ntk"))
edge = 2.0 / np.linalg.eigvalsh(kernel)[-1]
print(f"static GD edge 2/λ_max = {edge:.4g}")

fig = Figure(figsize=(6.0, 4.2))
ax = fig.subplots()
for i, amp in enumerate(amplitudes):
    etas = []
    for period in periods:
        # the Floquet map needs the full cycle, C·T steps (every class emphasised once), not one period
        weights = oscillatory.cycle_weights(labels, n_classes=3, period=period, amplitude=amp)
        etas.append(oscillatory.stability_boundary(kernel, weights, eta_max=3.0 * edge))
        print(f"A = {amp:4g}, T = {period:3d}: η* = {etas[-1]:.4g} ({etas[-1] / edge:.3f} × 2/λ_max)")
    ax.plot(periods, np.asarray(etas) / edge, "o-", color=f"C{i}", label=f"A = {amp:g}")
ax.axhline(1.0, ls=":", color="k", lw=1, label="static edge 2/λ_max")
ax.set_xscale("log")
ax.set_xticks(periods, [str(p) for p in periods])
ax.minorticks_off()
ax.set_xlabel("period T (steps)")
ax.set_ylabel("η* / (2/λ_max)")
ax.set_title(f"Floquet boundary, weighted MSE, spiral {'/'.join(map(str, counts))}")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
path = Path(args.out) / "floquet_boundary.png"
fig.tight_layout()
fig.savefig(path, dpi=110)
print("figure:", path)
