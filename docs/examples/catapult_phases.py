"""The catapult phases of your own network under GD, against the quadratic model's window and the
linear theory's 2/λ0, over widths and seeds.

`compare.catapult_gd` runs every seed at η = x/λ0 (λ0 the top eigenvalue of that seed's own
empirical NTK at init), reads each run's phase off its dynamics (the loss rises above L(0) and comes
back, and the kernel's top eigenvalue drops) and sets it against both theories.
`python docs/examples/catapult_phases.py [--small] [--out DIR]`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from widenet import compare, data, networks, results  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="tiny sizes (seconds; what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
widths, seeds, n, steps = ((32, 64), 2, 12, 40) if args.small else ((256, 1024), 5, 64, 200)
products = (1.5, 2.5, 3.5) if args.small else (1.0, 1.5, 1.9, 2.1, 2.3, 2.6, 3.0, 3.5, 4.5, 6.0)

d = data.digits(key=jax.random.PRNGKey(0), n_train=n, n_test=0)
comp = compare.catapult_gd(lambda w: networks.mlp((w,)),  # your network: any stax definition (networks.from_stax)
                           d, widths=widths, seeds=seeds, products=products, steps=steps, key=jax.random.PRNGKey(1))  # fmt: skip
for width, share in comp.agreement().items():
    uv, linear = share["uv"], share["linear"]
    print(f"width {width}: runs in the predicted phase: quadratic model {uv[0]:.2f} [{uv[1]:.2f}, {uv[2]:.2f}], "
          f"linear model {linear[0]:.2f} [{linear[1]:.2f}, {linear[2]:.2f}]")  # fmt: skip
for width, (mean, low, high) in comp.lower_edge().items():
    print(f"width {width}: lower edge of the window η·λ0 = {mean:.3f} [{low:.3f}, {high:.3f}] (theory: 2)")

out = Path(args.out)
results.save(comp.to_xarray(), out / "catapult_phases.nc")
print("phases of the reloaded runs:", results.load(out / "catapult_phases.nc")["measured_phase"].values[0, 0])
print("figure:", comp.plot(out / "catapult_phases.png"))
