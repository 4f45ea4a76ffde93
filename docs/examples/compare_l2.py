"""Your own stax network against eq. 3 of the L2 paper (its Fig. 5c) at three widths and five seeds:
train, compare, save, reload, plot. `python docs/examples/compare_l2.py [--small] [--out DIR]`."""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # theory in float64

from widenet import compare, data, networks, results  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="tiny sizes (seconds; what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
out = Path(args.out)
widths, n, steps = ((32, 64, 128), 16, 100) if args.small else ((256, 1024, 4096), 128, 4000)

key = jax.random.PRNGKey(0)
d = data.digits(key=key, n_train=n, n_test=n)  # MNIST's offline stand-in: even/odd, ±1 targets
stax = networks.stax  # any stax layers; bias-free ReLU layers keep the net 2-homogeneous
my_net = lambda w: networks.from_stax(  # noqa: E731
    stax.serial(stax.Dense(w), stax.Relu(), stax.Dense(1)), 1, key=key, input_dim=64, name=f"relu-{w}"
)
comp = compare.l2_mse(my_net, d, widths=widths, seeds=5, learning_rate=0.5 / n, l2=0.1, steps=steps, key=key)
results.save(comp.to_xarray(), out / "compare_l2.nc")
print(results.load(out / "compare_l2.nc"))
for width, stats in comp.agreement().items():
    theory, linear = stats["theory"], stats["linear"]
    print(
        f"width {width}: eq. 3 {theory[0]:.3g} [{theory[1]:.3g}, {theory[2]:.3g}], k = 1 {linear[0]:.3g} [{linear[1]:.3g}, {linear[2]:.3g}]"
    )
print("figure:", comp.plot(out / "compare_l2.png"))
