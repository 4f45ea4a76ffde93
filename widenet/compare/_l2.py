"""Your own network against the L2 theory: train it at several widths and seeds, put eq. 3 beside it.

`l2(make_network, data, widths=..., seeds=..., learning_rate=..., l2=..., steps=...)` trains, for
every width, a vmapped sweep over seeds of the network `make_network(width)` (any stax network
wrapped as a `networks.Network`) with L2, and evaluates on each run's own time grid and from each
run's own initial kernel and outputs (the shared `harness.Problem`):

- the theory for the network's degree k: for MSE with a constant λ, eq. 3 of the L2 paper in closed
  form (`l2_homogeneous.mse_solution`); for cross-entropy, or an L2 schedule λ(step), the
  function-space ODE of eq. 1 (`ode.function_space_ode`, with $e^{-2(k-1)\\int\\lambda}$ for a schedule);
- the rival: the linear model (k = 1), which ignores the kernel's decay, by the same route.

`l2_mse` is `l2` with the loss fixed to MSE. Both return an `L2Comparison`: the losses of all
three on a (width, seed, record) grid, agreement statistics over seeds with 95% t-intervals,
`to_xarray()` for saving (`widenet.results.save`) and `plot(path)` for a figure with seed bands.
Reproducing the L2 paper's Fig. 5c for your own net:

    >>> comp = compare.l2_mse(lambda w: networks.mlp((w,)), data.digits(key=k, n_train=128, n_test=128),
    ...                       widths=(256, 1024), seeds=5, learning_rate=0.01, l2=0.1, steps=2000, key=k)
    >>> comp.agreement()          # per width: mean relative error of eq. 3 and of k = 1, with intervals
    >>> comp.plot("fig5c.png")

AutoL2 sets λ from the measured loss as training goes, so no open-loop theory predicts its runs;
it is not accepted here (train it with `experiment.train` and compare the λ it chose).
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, losses
from .._checks import check_int, check_range
from ..experiment.train import TrainConfig, train_sweep
from ..schedules import AutoL2
from ..theory import l2_homogeneous as l2h
from ..theory import ode
from ._stats import defined_interval

__all__ = ["L2Comparison", "l2", "l2_mse"]


@dataclass(frozen=True)
class L2Comparison:
    """Trained networks against eq. 3 and the linear model, on a (width, seed, record) grid.

    Attributes:
        widths, seeds: the sweep. k: the networks' degree of homogeneity (eq. 3's k).
        steps: (K,) recorded steps. t: (W, S, K) gradient-flow time of each run.
        measured, theory, linear: {"train": (W, S, K), "test": (W, S, K)} losses (the trainer's:
            ½Σ(f - y)² or Σ cross-entropy) of the trained networks, of the theory with k (eq. 3, or
            the ODE of eq. 1), and of the k = 1 model.
        loss_minimum_time: (W, S) t* of eq. 3's training-loss minimum (inf if none; NaN where there
            is no closed form: cross-entropy or an L2 schedule).
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
        t-intervals, as {width: {"theory": (mean, low, high), "linear": (mean, low, high)}}; seeds
        whose error is not finite (a diverged run) are left out (`defined_interval`)."""
        out = {}
        for i, width in enumerate(self.widths):
            out[width] = {
                which: defined_interval(self.relative_error(which, split, until)[i])
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
                data[f"{which}_{split}_loss"] = (("width", "seed", "record"), value,
                                                     {"units": "½Σ(f - y)²" if self.config.get("loss", "mse") == "mse" else "Σ cross-entropy"})
        data["loss_minimum_time"] = (("width", "seed"), self.loss_minimum_time)
        data["diverged_at"] = (("width", "seed"), self.diverged_at)
        coords = {"width": list(self.widths), "seed": np.arange(self.seeds), "step": ("record", self.steps)}
        attrs = {"kind": "widenet.L2Comparison", "k": self.k, "config": json.dumps(self.config, default=str)}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def plot(self, path, *, split="train"):
        """Measured losses (seed mean, 95% band) and both theories (seed mean) against t, one colour per width."""
        from ..plots import comparison

        return comparison(path, self, split=split)


def l2(
    make_network: Callable,
    data,
    *,
    widths,
    seeds,
    learning_rate,
    l2,
    steps,
    key,
    loss="mse",
    records=100,
    progress=False,
):
    """Train `make_network(width)` at each width over `seeds` seeds (full-batch GD with L2) and
    evaluate the theory for the network's degree k and the k = 1 model from each run's own Θ0 and f0.

    The theory is gradient flow: at a finite η, GD's own map differs from it by O(η) at every width
    (`l2_homogeneous.gd_solution` gives the map for MSE with a constant λ; the harness's `l2_digits`
    uses it), so keep ηγ_max small (e.g. 0.1) when the agreement is to measure the width effect alone.

    Args:
        make_network: width -> `networks.Network`, e.g. `lambda w: networks.mlp((w,))` or a
            `networks.from_stax(...)` of your own stax layers.
        data: a `data.Dataset` (targets y of shape (n, C); one-hot for cross-entropy).
        widths: the widths. seeds: number of seeds (>= 2 for intervals; 5 or more recommended).
        learning_rate: η > 0, or a schedule `step -> η` (then `l2` must be a constant: the theory's
            time is each run's own $t = \\sum\\eta$).
        l2: λ > 0, or a schedule `step -> λ >= 0` (with a constant η; e.g. `schedules.l2_budget`).
        steps: number of updates. key: PRNG key for the initialisations (keyword-only).
        loss: "mse" (eq. 3 in closed form when λ is constant) or "cross_entropy" (the ODE).
        records: number of records per run.

    Returns:
        `L2Comparison`.
    """
    return _compare(make_network, data, widths=widths, seeds=seeds, learning_rate=learning_rate, l2=l2,
                    steps=steps, key=key, loss=loss, records=records, progress=progress)  # fmt: skip


def l2_mse(make_network: Callable, data, *, widths, seeds, learning_rate, l2, steps, key, records=100,
           progress=False):  # fmt: skip
    """`l2` with MSE: eq. 3 of the L2 paper against your network (arguments as `l2`)."""
    return _compare(make_network, data, widths=widths, seeds=seeds, learning_rate=learning_rate, l2=l2,
                    steps=steps, key=key, loss="mse", records=records, progress=progress)  # fmt: skip


def _theory_losses(loss, times, problems, data, *, l2, k, learning_rate):
    """(train, test) losses of the theory with degree k on every run's own times: lists over runs.

    MSE with a constant λ: eq. 3 in closed form per run. Otherwise the ODE of eq. 1, vmapped over the
    runs (one compile for all seeds of a width, not one per run)."""
    y, yt = jnp.asarray(data.y_train, dtype=float), jnp.asarray(data.y_test, dtype=float)
    fn = jax.vmap(losses.get(loss), in_axes=(0, None))
    if loss == "mse" and not callable(l2):
        out = []
        for t, p in zip(times, problems):
            sol = l2h.mse_solution(t, p.ntk_train, data.y_train, p.f0_train, l2=l2, k=k,
                                   ntk_test_train=p.ntk_test_train, f0_test=p.f0_test)  # fmt: skip
            out.append((np.asarray(fn(sol.f_train, y)), np.asarray(fn(sol.f_test, yt))))
        return [a for a, _ in out], [b for _, b in out]
    l2_of_t = _l2_of_time(l2, learning_rate) if callable(l2) else l2

    def one_run(t, ntk, f0, ntk_xt, f0x):
        sol = ode.function_space_ode(t, ntk, y, f0, l2=l2_of_t, k=k, loss=loss, ntk_test_train=ntk_xt, f0_test=f0x)
        return fn(sol.f_train, y), fn(sol.f_test, yt), sol.success

    stack = lambda name: jnp.stack([jnp.asarray(getattr(p, name), dtype=float) for p in problems])  # noqa: E731
    train, test, ok = jax.jit(jax.vmap(one_run))(jnp.asarray(np.asarray(times), dtype=float), stack("ntk_train"),
                                                 stack("f0_train"), stack("ntk_test_train"), stack("f0_test"))  # fmt: skip
    train, test, ok = np.asarray(train), np.asarray(test), np.asarray(ok)
    if not ok.all():
        warnings.warn(f"compare.l2: the ODE solver failed for {int((~ok).sum())} of {ok.size} runs (k = {k:g}); their "
                      "theory is NaN and they are left out of the agreement", RuntimeWarning, stacklevel=3)  # fmt: skip
        train[~ok], test[~ok] = np.nan, np.nan
    return list(train), list(test)


def _l2_of_time(schedule, learning_rate):
    """λ as a function of gradient-flow time for an L2 schedule in steps at a constant rate η: update s
    covers $t \\in [s\\eta, (s+1)\\eta)$ and uses `schedule(s)`, as the trainer does."""

    def l2_of_t(time):
        return jnp.asarray(schedule(jnp.floor(time / learning_rate + 1e-9).astype(int)), dtype=float)

    return l2_of_t


def _compare(make_network, data, *, widths, seeds, learning_rate, l2, steps, key, loss, records, progress):
    losses.get(loss)
    if isinstance(l2, AutoL2):
        raise ValueError("`l2`: AutoL2 sets λ from the measured loss, so no open-loop theory predicts it; pass a "
                         "constant or a schedule step -> λ")  # fmt: skip
    if callable(learning_rate) and callable(l2):
        raise ValueError("`learning_rate` and `l2` cannot both be schedules: the theory maps steps to time with a "
                         "constant η when λ changes by step")  # fmt: skip
    check_int("seeds", seeds, low=1)
    if not callable(learning_rate):
        check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    if not callable(l2):
        check_range("l2", l2, low=0.0, low_open=True)
    steps = check_int("steps", steps, low=1)
    records = check_int("records", records, low=1)
    widths = tuple(check_int("widths", w, low=1) for w in widths)
    if not widths:
        raise ValueError("`widths` must list at least one width")
    config = TrainConfig(steps=steps, record_every=max(1, steps // records), loss=loss, record_outputs=False)
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
            train_losses, test_losses = _theory_losses(loss, res.t, problems, data, l2=l2, k=k,
                                                       learning_rate=learning_rate)  # fmt: skip
            store["train"].append(train_losses)
            store["test"].append(test_losses)
        closed_form = loss == "mse" and not callable(l2)
        minimum.append([
            float(l2h.loss_minimum_time(p.ntk_train, data.y_train, p.f0_train, l2=l2, k=network.degree))
            if closed_form else np.nan for p in problems
        ])  # fmt: skip
    if len(ks) != 1:
        raise ValueError(f"`make_network` must give one degree of homogeneity at every width; got {sorted(ks)}")
    stack = lambda d: {s: np.asarray(v, dtype=float) for s, v in d.items()}  # noqa: E731
    return L2Comparison(
        widths=widths, seeds=seeds, k=ks.pop(), steps=res.steps, t=np.asarray(t_all), measured=stack(measured),
        theory=stack(theory), linear=stack(linear), loss_minimum_time=np.asarray(minimum),
        diverged_at=np.asarray(diverged),
        config={"learning_rate": learning_rate if callable(learning_rate) else float(learning_rate),
                "l2": l2 if callable(l2) else float(l2), "loss": loss,
                "route": "eq. 3" if loss == "mse" and not callable(l2) else "eq. 1 (ODE)", "steps": steps, "seeds": seeds,
                "widths": list(widths), "data": getattr(data, "name", "data")},
    )  # fmt: skip
