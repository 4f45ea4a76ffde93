"""Compare your own network with the L2 theory: train it at several widths and seeds, put eq. 3 beside it.

`l2_mse(make_network, data, widths=..., seeds=..., learning_rate=..., l2=..., steps=...)` trains, for
every width, a vmapped sweep over seeds of the network `make_network(width)` (any stax network
wrapped as a `networks.Network`) with MSE and constant L2, and evaluates on each run's own time grid
and from each run's own initial kernel and outputs (the shared `harness.Problem`):

- the theory for the network's degree k: eq. 3 of the L2 paper in closed form
  (`l2_homogeneous.mse_solution`), train and test outputs;
- the rival: the linear model (k = 1), which ignores the kernel's decay.

It returns an `L2Comparison`: the losses of all three on a (width, seed, record) grid, agreement
statistics over seeds with 95% t-intervals, `to_xarray()` for saving (`widenet.results.save`) and
`plot(path)` for a figure with seed bands. Reproducing the L2 paper's Fig. 5c for your own net:

    >>> comp = compare.l2_mse(lambda w: networks.mlp((w,)), data.digits(key=k, n_train=128, n_test=128),
    ...                       widths=(256, 1024), seeds=5, learning_rate=0.01, l2=0.1, steps=2000, key=k)
    >>> comp.agreement()          # per width: mean relative error of eq. 3 and of k = 1, with intervals
    >>> comp.plot("fig5c.png")
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import harness, losses
from ._checks import check_int, check_range
from .experiment.train import TrainConfig, train_sweep
from .theory import l2_homogeneous as l2h

__all__ = ["L2Comparison", "l2_mse", "mean_interval"]

# the trainer's own loss (widenet.losses.mse) at every time of a theory solution
_mse_over_time = jax.vmap(losses.mse, in_axes=(0, None))


def mean_interval(values, confidence=0.95):
    """Mean of `values` (over seeds, axis 0) and its two-sided Student-t interval.

    Returns:
        (mean, low, high); with one value the interval is (-inf, inf): one seed cannot bound a mean.
    """
    check_range("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    return harness.seed_interval(values, confidence)


@dataclass(frozen=True)
class L2Comparison:
    """Trained networks against eq. 3 and the linear model, on a (width, seed, record) grid.

    Attributes:
        widths, seeds: the sweep. k: the networks' degree of homogeneity (eq. 3's k).
        steps: (K,) recorded steps. t: (W, S, K) gradient-flow time of each run.
        measured, theory, linear: {"train": (W, S, K), "test": (W, S, K)} losses ½Σ(f - y)² of the
            trained networks, of eq. 3 with k, and of the k = 1 model.
        loss_minimum_time: (W, S) t* of eq. 3's training-loss minimum (inf if none).
        diverged_at: (W, S) step at which a run diverged, -1 if it did not.
        config: what produced it (for the saved Dataset's attrs).
    """

    widths: tuple
    seeds: int
    k: float
    steps: np.ndarray
    t: np.ndarray
    measured: dict
    theory: dict
    linear: dict
    loss_minimum_time: np.ndarray
    diverged_at: np.ndarray
    config: dict = field(default_factory=dict)

    def relative_error(self, which="theory", split="train", until=None):
        """(W, S) max over records with t <= `until` (default: each run's eq. 3 loss minimum, or the
        whole run when there is none) of |measured - prediction| / prediction."""
        predicted = getattr(self, which)[split]
        err = np.abs(self.measured[split] - predicted) / np.abs(predicted)
        limit = self.loss_minimum_time if until is None else np.broadcast_to(until, self.loss_minimum_time.shape)
        inside = self.t <= np.where(np.isfinite(limit), limit, np.inf)[..., None]
        return np.where(inside, err, -np.inf).max(axis=-1)

    def agreement(self, split="train", until=None):
        """Per width: mean over seeds of the relative errors of eq. 3 and of the k = 1 rival, with 95%
        t-intervals, as {width: {"theory": (mean, low, high), "linear": (mean, low, high)}}."""
        out = {}
        for i, width in enumerate(self.widths):
            out[width] = {
                which: tuple(float(v) for v in mean_interval(self.relative_error(which, split, until)[i]))
                for which in ("theory", "linear")
            }
        return out

    def to_xarray(self):
        """An `xarray.Dataset` with dims (width, seed, record), saved by `widenet.results.save`."""
        import json

        import xarray as xr

        data = {"t": (("width", "seed", "record"), self.t, {"units": "gradient-flow time"})}
        for which in ("measured", "theory", "linear"):
            for split, value in getattr(self, which).items():
                data[f"{which}_{split}_loss"] = (("width", "seed", "record"), value, {"units": "½Σ(f - y)²"})
        data["loss_minimum_time"] = (("width", "seed"), self.loss_minimum_time)
        data["diverged_at"] = (("width", "seed"), self.diverged_at)
        coords = {"width": list(self.widths), "seed": np.arange(self.seeds), "step": ("record", self.steps)}
        attrs = {"kind": "widenet.L2Comparison", "k": self.k, "config": json.dumps(self.config, default=str)}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def plot(self, path, *, split="train"):
        """Measured losses (seed mean, 95% band) and both theories (seed mean) against t, one colour per width."""
        from .plots import comparison

        return comparison(path, self, split=split)


def l2_mse(
    make_network: Callable,
    data,
    *,
    widths,
    seeds,
    learning_rate,
    l2,
    steps,
    key,
    records=100,
    progress=False,
):
    """Train `make_network(width)` at each width over `seeds` seeds (MSE, constant L2) and evaluate
    eq. 3 (k = the network's degree) and the k = 1 model from each run's own Θ0 and f0.

    Args:
        make_network: width -> `networks.Network`, e.g. `lambda w: networks.mlp((w,))` or a
            `networks.from_stax(...)` of your own stax layers.
        data: a `data.Dataset` (targets y of shape (n, C)).
        widths: the widths. seeds: number of seeds (>= 2 for intervals; 5 or more recommended).
        learning_rate: η > 0 (gradient descent, full batch). l2: λ > 0. steps: number of updates.
        key: PRNG key for the initialisations (keyword-only).
        records: number of records per run.

    Returns:
        `L2Comparison`.
    """
    check_int("seeds", seeds, low=1)
    check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    check_range("l2", l2, low=0.0, low_open=True)
    steps = check_int("steps", steps, low=1)
    records = check_int("records", records, low=1)
    widths = tuple(check_int("widths", w, low=1) for w in widths)
    if not widths:
        raise ValueError("`widths` must list at least one width")
    config = TrainConfig(steps=steps, record_every=max(1, steps // records), record_outputs=False)
    ks, t_all, minimum, diverged = set(), [], [], []
    measured, theory, linear = ({"train": [], "test": []} for _ in range(3))
    for width in widths:
        network = make_network(width)
        if network.degree is None:
            raise ValueError(
                f"`make_network({width})` is not homogeneous (degree None: biases, erf, ...): eq. 3 needs a "
                "k-homogeneous network, e.g. a bias-free ReLU MLP"
            )
        ks.add(network.degree)
        problems = [
            harness.build_problem(data, network, key=k, analytic=False)
            for k in jax.random.split(jax.random.fold_in(key, width), seeds)
        ]
        params = jax.tree.map(lambda *p: jnp.stack(p), *[p.params0 for p in problems])
        res = train_sweep(network.apply_fn, params, data, config, learning_rate=learning_rate, l2=l2, progress=progress)
        t_all.append(res.t)
        diverged.append(res.diverged_at)
        measured["train"].append(res.train_loss)
        measured["test"].append(res.test_loss)
        for store, k in ((theory, network.degree), (linear, 1.0)):
            train_losses, test_losses = [], []
            for i, p in enumerate(problems):
                sol = l2h.mse_solution(res.t[i], p.ntk_train, data.y_train, p.f0_train, l2=l2, k=k,
                                       ntk_test_train=p.ntk_test_train, f0_test=p.f0_test)  # fmt: skip
                train_losses.append(np.asarray(_mse_over_time(sol.f_train, jnp.asarray(data.y_train, dtype=float))))
                test_losses.append(np.asarray(_mse_over_time(sol.f_test, jnp.asarray(data.y_test, dtype=float))))
            store["train"].append(train_losses)
            store["test"].append(test_losses)
        minimum.append([
            float(l2h.loss_minimum_time(p.ntk_train, data.y_train, p.f0_train, l2=l2, k=network.degree))
            for p in problems
        ])  # fmt: skip
    if len(ks) != 1:
        raise ValueError(f"`make_network` must give one degree of homogeneity at every width; got {sorted(ks)}")
    stack = lambda d: {s: np.asarray(v, dtype=float) for s, v in d.items()}  # noqa: E731
    return L2Comparison(
        widths=widths, seeds=seeds, k=ks.pop(), steps=res.steps, t=np.asarray(t_all), measured=stack(measured),
        theory=stack(theory), linear=stack(linear), loss_minimum_time=np.asarray(minimum),
        diverged_at=np.asarray(diverged),
        config={"learning_rate": float(learning_rate), "l2": float(l2), "steps": steps, "seeds": seeds,
                "widths": list(widths), "data": getattr(data, "name", "data")},
    )  # fmt: skip
