"""Your own network under oscillating class weights against the Floquet boundary, seed by seed.

`floquet(make_network, data, widths=..., seeds=..., period=T, amplitude=A, ratios=..., cycles=...)`
trains, for every width and seed, the network's lazy model (`networks.lazy`, scale α: the
linearised network at finite width, so the catapult range does not cut the measurement short) with
weighted MSE under the class weights $\\Gamma(t)$ of the dynamical-loss supplement
(`schedules.class_weights`), at learning rates $\\eta = r\\,\\eta^*$ for each ratio r, where $\\eta^*$ is
the Floquet boundary of the infinite-width kernel over the full weight cycle (C·T steps;
`oscillatory.stability_boundary`). The residual's growth per cycle is measured from the loss and
compared with

- the theory at infinite width: the run is stable iff r < 1;
- each network's own linearisation: $\\log|\\mu_{max}|$ of its own full output kernel (exact for the
  lazy model, up to the lazy scale), and its own boundary $\\eta^*_{own}$;
- the rival: the static GD edge $2/\\lambda_{max}(\\Theta)$, which ignores the weights' oscillation.

    >>> comp = compare.floquet(lambda w: networks.mlp((w,), 3, b_std=1.0), data.spiral(k, n_per_class=(60, 20, 20)),
    ...                        widths=(128, 512), seeds=4, period=2, amplitude=30.0,
    ...                        ratios=np.linspace(0.86, 1.14, 15), cycles=40, key=k)
    >>> comp.agreement()     # |measured boundary / predicted - 1| per width, with intervals
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_range
from ..experiment.train import TrainConfig, train_sweep
from ..networks import empirical_ntk_full, lazy, lazy_params
from ..schedules import class_weights
from ..theory import oscillatory
from ._stats import defined_interval

__all__ = ["FloquetComparison", "floquet", "growth_per_cycle", "boundary_crossing"]

GROWTH_CAP = 1e12  # loss growth beyond which a lazy run is no longer read (residual 1e6-fold)
CLEAR_GROWTH = 0.1  # log growth per cycle above which the unstable multiplier dominates the window


def growth_per_cycle(loss, window=5):
    """log of the residual's growth per weight cycle, from a loss recorded once per cycle.

    The slope of $\\frac12\\log L$ over the last `window` cycles below `GROWTH_CAP`·L(0): the
    asymptotic rate, after the slower modes have faded. It estimates $\\log|\\mu_{max}|$ of the cycle
    map (`oscillatory.floquet_radius`); inf when the cap is reached within the first cycle.
    """
    loss = np.asarray(loss, dtype=float)
    if loss.ndim != 1 or loss.size < 2:
        raise ValueError(f"`loss` must be 1-D with at least 2 records (one per cycle); got shape {loss.shape}")
    check_int("window", window, low=1)
    readable = np.isfinite(loss) & (loss < GROWTH_CAP * loss[0])
    last = int(np.max(np.nonzero(readable)[0]))
    if last == 0:
        return np.inf
    first = max(last - window, 0)
    return 0.5 * np.polyfit(np.arange(first, last + 1), np.log(loss[first : last + 1]), 1)[0]


def boundary_crossing(ratios, growth):
    """The ratio η/η* at which the growth per cycle crosses 0, extrapolated linearly from the first
    two runs that clearly grow (> `CLEAR_GROWTH`): near the crossing the growth is too slow to
    dominate the window, and on the stable side slow modes keep it just below 0. NaN when the grid
    does not bracket the crossing."""
    ratios, growth = np.asarray(ratios, dtype=float), np.asarray(growth, dtype=float)
    if ratios.shape != growth.shape or ratios.ndim != 1:
        raise ValueError(f"`growth` must give one value per ratio; got shapes {growth.shape} and {ratios.shape}")
    up = np.nonzero(growth > CLEAR_GROWTH)[0]
    if up.size < 2 or up[0] == 0:
        return np.nan
    i, j = up[0], up[1]
    return ratios[i] - growth[i] * (ratios[j] - ratios[i]) / (growth[j] - growth[i])


@dataclass(frozen=True)
class FloquetComparison:
    """Lazy networks under class weights at $\\eta = r\\,\\eta^*$ on a (width, seed, ratio) grid.

    Attributes:
        widths, seeds, ratios (F,), period, amplitude: the sweep.
        eta_star: the infinite-width Floquet boundary. static_edge: $2/\\lambda_{max}$ of that kernel.
        own_eta_star: (W, S) each initial network's own boundary (its full output kernel).
        own_log_radius: (W, S, F) $\\log|\\mu_{max}|$ of each run's own cycle map.
        growth: (W, S, F) measured log growth of the residual per cycle (`growth_per_cycle`).
        train_loss: (W, S, F, cycles + 1) the unweighted loss ½Σ(g - y)² once per cycle (lazy units).
        config: what produced it.
    """

    widths: tuple
    seeds: int
    ratios: np.ndarray
    period: int
    amplitude: float
    eta_star: float
    static_edge: float
    own_eta_star: np.ndarray
    own_log_radius: np.ndarray
    growth: np.ndarray
    train_loss: np.ndarray
    config: dict = field(default_factory=dict)

    def measured_boundary(self):
        """(W, S) each seed's measured boundary in units of $\\eta^*$ (`boundary_crossing`)."""
        return np.array([[boundary_crossing(self.ratios, g) for g in per_width] for per_width in self.growth])

    def agreement(self):
        """Per width, mean over seeds with 95% t-intervals of the measured boundary's relative miss
        against the infinite-width theory (|m - 1|), each network's own linearisation
        (|m·η*/η*_own - 1|) and the static rival (|m·η*/(2/λ_max) - 1|):
        {width: {"floquet": ..., "own": ..., "static": ...}}; seeds whose grid does not bracket their
        boundary are left out (`defined_interval`)."""
        m = self.measured_boundary()
        miss = {
            "floquet": np.abs(m - 1.0),
            "own": np.abs(m * self.eta_star / self.own_eta_star - 1.0),
            "static": np.abs(m * self.eta_star / self.static_edge - 1.0),
        }
        return {
            w: {name: defined_interval(value[i]) for name, value in miss.items()}
            for i, w in enumerate(self.widths)
        }

    def to_xarray(self):
        """An `xarray.Dataset` with dims (width, seed, ratio, cycle), saved by `widenet.results.save`."""
        import json

        import xarray as xr

        dims = ("width", "seed", "ratio")
        data = {
            "own_eta_star": (dims[:2], self.own_eta_star, {"units": "learning rate"}),
            "own_log_radius": (dims, self.own_log_radius, {"units": "log growth per weight cycle"}),
            "growth": (dims, self.growth, {"units": "log growth per weight cycle"}),
            "train_loss": (dims + ("cycle",), self.train_loss, {"units": "½Σ(g - y)², lazy model"}),
        }
        coords = {"width": list(self.widths), "seed": np.arange(self.seeds), "ratio": self.ratios}
        attrs = {"kind": "widenet.FloquetComparison", "period": self.period, "amplitude": self.amplitude,
                 "eta_star": self.eta_star, "static_edge": self.static_edge,
                 "config": json.dumps(self.config, default=str)}  # fmt: skip
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def plot(self, path):
        """Measured growth per cycle against η/η* (seed mean, 95% band, one colour per width) with each
        network's own predicted $\\log|\\mu_{max}|$, the boundary and the static edge marked."""
        from ..plots import floquet_comparison

        return floquet_comparison(path, self)


def floquet(
    make_network: Callable,
    data,
    *,
    widths,
    seeds,
    period,
    amplitude,
    ratios,
    cycles,
    key,
    shape="triangle",
    lazy_scale=1e10,
    progress=False,
):
    """Train lazy `make_network(width)` models under class weights at $\\eta = r\\,\\eta^*$ for r in
    `ratios`, `seeds` initialisations per width, for `cycles` full weight cycles (C·T steps each).

    Args:
        make_network: width -> `networks.Network` with C outputs, C the number of classes.
        data: a `data.Dataset` with `labels_train` (e.g. `data.spiral`); training set only.
        widths, seeds: the sweep (seeds >= 2 for intervals).
        period, amplitude, shape: the class-weight schedule (`schedules.class_weights`).
        ratios: η/η* values, ascending, bracketing 1 (e.g. 0.86 ... 1.14).
        cycles: weight cycles per run (enough for the unstable multiplier to dominate: ~40).
        key: PRNG key of the initialisations. lazy_scale: α of `networks.lazy`.

    Returns:
        `FloquetComparison`.
    """
    check_int("seeds", seeds, low=1)
    period = check_int("period", period, low=2, meaning="steps per period")
    check_range("amplitude", amplitude, low=1.0)
    cycles = check_int("cycles", cycles, low=2, meaning="weight cycles per run (the growth needs two records)")
    check_range("lazy_scale", lazy_scale, low=1.0, meaning="the lazy model's α (large: the linearised network)")
    widths = tuple(check_int("widths", w, low=1) for w in widths)
    if not widths:
        raise ValueError("`widths` must list at least one width")
    ratios = np.asarray(ratios, dtype=float)
    if ratios.ndim != 1 or ratios.size < 2 or np.any(np.diff(ratios) <= 0) or ratios[0] <= 0:
        raise ValueError(f"`ratios` must be >= 2 positive values, ascending; got {ratios.tolist()}")
    if data.labels_train is None:
        raise ValueError("`data` must carry `labels_train` (class weights act by class), e.g. data.spiral(...)")
    y = np.asarray(data.y_train)
    n_classes = y.shape[1] if y.ndim == 2 else 1
    if n_classes < 2:
        raise ValueError(
            f"`data.y_train` must be one-hot over C >= 2 classes (the weights act by class); got shape {y.shape}"
        )
    labels = np.asarray(data.labels_train)
    x = jnp.asarray(data.x_train, dtype=float)
    cycle = oscillatory.cycle_weights(labels, n_classes=n_classes, period=period, amplitude=amplitude, shape=shape)
    kernel = np.asarray(make_network(widths[0]).ntk(x))
    lam = float(np.linalg.eigvalsh(kernel)[-1])
    eta_max = 4.0 / lam
    eta_star = oscillatory.stability_boundary(kernel, cycle, eta_max=eta_max, grid=64, rtol=1e-8)
    if not np.isfinite(eta_star):
        raise ValueError(
            f"the infinite-width dynamics are stable up to η = 4/λ_max = {eta_max:.4g}: no boundary to compare"
        )
    steps_per_cycle = n_classes * period
    config = TrainConfig(steps=cycles * steps_per_cycle, record_every=steps_per_cycle, record_outputs=False,
                         divergence_loss=1e300)  # fmt: skip

    def weights(step):
        return class_weights(step, n_classes=n_classes, period=period, amplitude=amplitude, shape=shape)[labels]

    # every width's kernel has the same shape: one compiled radius for all of them
    radius = jax.jit(jax.vmap(lambda eta, k: oscillatory.floquet_radius(k, cycle, learning_rate=eta), (0, None)))
    own, own_radius, growth, losses = [], [], [], []
    for width in widths:
        network = make_network(width)
        if network.out_dim != n_classes:
            raise ValueError(
                f"`make_network({width})` has {network.out_dim} outputs; the data have {n_classes} classes"
            )
        inits = [network.init(k, x.shape[1]) for k in jax.random.split(jax.random.fold_in(key, width), seeds)]
        runs = jax.tree.map(lambda *p: jnp.stack(p), *[lazy_params(p) for p in inits for _ in ratios])
        lr = np.tile(ratios * eta_star, seeds) / lazy_scale**2
        res = train_sweep(lazy(network.apply_fn, lazy_scale), runs, data, config, learning_rate=lr,
                          sample_weights=weights, progress=progress)  # fmt: skip
        loss = res.train_loss.reshape(seeds, len(ratios), -1)
        losses.append(loss)
        growth.append([[growth_per_cycle(run) for run in seed] for seed in loss])
        full = empirical_ntk_full(network.apply_fn)  # jitted
        own_w, radius_w = [], []
        for p in inits:  # each network's own full output kernel: its exact linear dynamics
            k = np.asarray(full(x, None, p))
            own_w.append(oscillatory.stability_boundary(k, cycle, eta_max=eta_max, grid=64, rtol=1e-8))
            radius_w.append(np.log(np.asarray(radius(jnp.asarray(ratios * eta_star), k))))
        own.append(own_w)
        own_radius.append(radius_w)
    return FloquetComparison(
        widths=widths, seeds=seeds, ratios=ratios, period=period, amplitude=float(amplitude),
        eta_star=float(eta_star), static_edge=2.0 / lam, own_eta_star=np.asarray(own, dtype=float),
        own_log_radius=np.asarray(own_radius), growth=np.asarray(growth, dtype=float), train_loss=np.asarray(losses),
        config={"period": period, "amplitude": float(amplitude), "shape": shape, "ratios": ratios.tolist(),
                "cycles": cycles, "seeds": seeds, "widths": list(widths), "lazy_scale": lazy_scale,
                "data": getattr(data, "name", "data")},
    )  # fmt: skip
