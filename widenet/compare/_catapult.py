"""Your own network's gradient-descent catapults against the theory, run by run.

`catapult_gd(make_network, data, widths=..., seeds=..., products=..., steps=...)` trains, for every
width and seed, the network at learning rates $\\eta = x/\\lambda_0$ for each $x$ in `products`, where
$\\lambda_0$ is the top eigenvalue of that run's own empirical tangent kernel at initialisation (loss
$\\frac12\\sum_i\\|f(x_i) - y_i\\|^2$, widenet's convention, so the critical rate is $2/\\lambda_0$; slides,
"Linear dynamics"). Each run's phase is read off its dynamics (`catapult.measured_phase`: the loss
rises above L(0) and comes back, and $\\lambda_{max}$ ends below $\\lambda_0$) and set against

- the theory: the uv / neural-quadratic-model phases (slides, "Catapult dynamics"): lazy for
  $\\eta\\lambda_0 < 2$, catapult for $2 < \\eta\\lambda_0 < 4$, divergent above (`catapult.uv_phase`);
- the rival: the linear (constant-kernel) model, lazy below $2/\\lambda_0$ and divergent above.

It returns a `CatapultComparison` with per-width agreement over seeds (95% t-intervals), the lower
edge of the catapult window per run, `to_xarray()` and `plot(path)`:

    >>> comp = compare.catapult_gd(lambda w: networks.mlp((w,)), data.digits(key=k, n_train=64),
    ...                            widths=(256, 1024), seeds=5, products=(1.5, 2.5, 3.5, 6.0), steps=200, key=k)
    >>> comp.agreement()     # share of runs in the predicted phase: uv theory vs linear model
    >>> comp.lower_edge()    # the window's lower edge, in units of 1/λ0, with its interval
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_range
from ..experiment.train import TrainConfig, train_sweep
from ..networks import empirical_ntk, empirical_ntk_full
from ..theory import catapult
from ._stats import defined_interval

__all__ = ["CatapultComparison", "catapult_gd"]


@dataclass(frozen=True)
class CatapultComparison:
    """GD runs at learning rates $\\eta = x/\\lambda_0$ on a (width, seed, product) grid.

    Attributes:
        widths, seeds: the sweep. products: (F,) the values $x = \\eta\\lambda_0$ asked for.
        lambda0: (W, S) top eigenvalue of each initial network's empirical tangent kernel (for C > 1
            outputs the full (nC, nC) kernel, whose λ_max sets GD's edge for ½Σ‖f - y‖²).
        lambda_end: (W, S, F) the same at the end of each run (NaN if it diverged).
        steps: (K,) recorded steps (every step). train_loss: (W, S, F, K) $\\frac12\\sum\\|f - y\\|^2$.
        diverged_at: (W, S, F) divergence step, -1 if none.
        config: what produced it.
    """

    widths: tuple
    seeds: int
    products: np.ndarray
    lambda0: np.ndarray
    lambda_end: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    diverged_at: np.ndarray
    config: dict = field(default_factory=dict)

    def measured_phases(self):
        """(W, S, F) phases by the dynamics: loss rise above L(0) and return, kernel drop (`PHASES`)."""
        start = np.broadcast_to(self.lambda0[..., None], self.lambda_end.shape)
        return catapult.measured_phase(
            self.train_loss, self.diverged_at, lambda_start=start, lambda_end=self.lambda_end
        )

    def predicted_phases(self, theory="uv"):
        """(F,) phases the `theory` predicts: "uv" (quadratic model: window 2 < ηλ0 < 4) or "linear"
        (constant kernel: divergent above 2)."""
        x = np.asarray(self.products, dtype=float)
        if theory == "uv":
            return np.asarray(catapult.uv_phase(np.ones_like(x), learning_rate=x))
        if theory == "linear":
            return np.where(x < 2.0, "lazy", "divergent")
        raise ValueError(f"`theory` must be 'uv' or 'linear'; got {theory!r}")

    def agreement(self):
        """Per width: the share of a seed's runs whose measured phase is the predicted one, mean over
        seeds with its 95% t-interval, for the uv theory and the linear rival:
        {width: {"uv": (mean, low, high), "linear": (mean, low, high)}}."""
        measured = self.measured_phases()
        out = {}
        for i, width in enumerate(self.widths):
            out[width] = {
                theory: defined_interval(np.mean(measured[i] == self.predicted_phases(theory), axis=-1))
                for theory in ("uv", "linear")
            }  # fmt: skip
        return out

    def lower_edges(self):
        """(W, S) lower edge of each seed's catapult window in units of $\\lambda_0^{-1}$ (`phase_edges`
        on its grid of products; the theory says 2); NaN where the grid holds no edge (no lazy run,
        or no non-lazy run after the last lazy one)."""
        phases = self.measured_phases()
        edges = np.array([[catapult.phase_edges(self.products, p)[0] for p in per_width] for per_width in phases])
        return np.where(np.isfinite(edges) & (edges > 0), edges, np.nan)

    def lower_edge(self):
        """Per width: the lower edge's mean over seeds with its 95% t-interval, {width: (mean, low, high)};
        seeds without an edge on the grid (all lazy, or none lazy) are left out (`defined_interval`)."""
        edges = self.lower_edges()
        return {w: defined_interval(edges[i]) for i, w in enumerate(self.widths)}

    def to_xarray(self):
        """An `xarray.Dataset` with dims (width, seed, product, record), saved by `widenet.results.save`."""
        import json

        import xarray as xr

        dims = ("width", "seed", "product")
        data = {
            "lambda0": (dims[:2], self.lambda0, {"units": "top eigenvalue of the empirical NTK at init"}),
            "lambda_end": (dims, self.lambda_end, {"units": "top eigenvalue of the empirical NTK at the end"}),
            "train_loss": (dims + ("record",), self.train_loss, {"units": "½Σ(f - y)²"}),
            "diverged_at": (dims, self.diverged_at),
            "measured_phase": (dims, self.measured_phases().astype(str)),
        }
        coords = {"width": list(self.widths), "seed": np.arange(self.seeds), "product": self.products,
                  "step": ("record", self.steps)}  # fmt: skip
        attrs = {"kind": "widenet.CatapultComparison", "config": json.dumps(self.config, default=str)}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def plot(self, path):
        """Max loss / L(0) and $\\eta\\lambda_{end}$ against $\\eta\\lambda_0$, seed means with 95% bands,
        one colour per width, the theory's window edges marked."""
        from ..plots import catapult_comparison

        return catapult_comparison(path, self)


def catapult_gd(
    make_network: Callable,
    data,
    *,
    widths,
    seeds,
    products,
    steps,
    key,
    progress=False,
):
    """Train `make_network(width)` with full-batch GD at $\\eta = x/\\lambda_0$ for every x in
    `products`, `seeds` initialisations per width (one vmapped sweep per width), MSE without L2.

    Args:
        make_network: width -> `networks.Network` (any stax network, `networks.from_stax`).
        data: a `data.Dataset`; only the training set is used.
        widths: the widths. seeds: initialisations per width (>= 2 for intervals).
        products: the values of $\\eta\\lambda_0$, > 0, sorted ascending (e.g. around 2 and 4).
        steps: GD steps per run (the loss is kept at every step, `TrainResult.step_loss`: a catapult
            lasts a few).
        key: PRNG key of the initialisations (keyword-only).

    Returns:
        `CatapultComparison`.
    """
    check_int("seeds", seeds, low=1)
    steps = check_int("steps", steps, low=1)
    widths = tuple(check_int("widths", w, low=1) for w in widths)
    if not widths:
        raise ValueError("`widths` must list at least one width")
    products = np.asarray(products, dtype=float)
    if products.ndim != 1 or products.size == 0:
        raise ValueError(f"`products` must be a non-empty 1-D list of η·λ0 values; got shape {products.shape}")
    for x in products:
        check_range("products", float(x), low=0.0, low_open=True, meaning="η·λ0 > 0")
    if np.any(np.diff(products) <= 0):
        raise ValueError(f"`products` must be sorted ascending without repeats; got {products.tolist()}")
    x_train = jnp.asarray(data.x_train, dtype=float)
    # the loss at every step from the gradient's own evaluation (record_step_loss); records only every 10 steps
    # (records at every step cost a forward pass and a record each: 57 s against 36 s for 75 runs at width 1024)
    config = TrainConfig(steps=steps, record_every=min(10, steps), record_outputs=False, divergence_loss=1e10,
                         record_step_loss=True)  # fmt: skip
    lam0_all, lam_end_all, losses_all, diverged_all = [], [], [], []
    for width in widths:
        network = make_network(width)
        if network.out_dim == 1:
            ntk = jax.jit(empirical_ntk(network.apply_fn))
            top = jax.jit(jax.vmap(lambda p, ntk=ntk: jnp.linalg.eigvalsh(ntk(x_train, None, p))[-1]))
        else:  # C outputs: GD's edge is set by the full (nC, nC) kernel, not the output-averaged one
            full = empirical_ntk_full(network.apply_fn)

            def top_one(p, full=full):
                k = full(x_train, None, p)  # (n, n, C, C)
                n, c = k.shape[0], k.shape[2]
                return jnp.linalg.eigvalsh(k.transpose(0, 2, 1, 3).reshape(n * c, n * c))[-1]

            top = jax.jit(jax.vmap(top_one))
        inits = [network.init(k, x_train.shape[1]) for k in jax.random.split(jax.random.fold_in(key, width), seeds)]
        params = jax.tree.map(lambda *p: jnp.stack(p), *inits)
        lam0 = np.asarray(top(params))
        # run (s, j): seed s at η = products[j] / λ0[s]
        runs = jax.tree.map(lambda p: jnp.repeat(p, len(products), axis=0), params)
        lr = (products[None, :] / lam0[:, None]).reshape(-1)
        res = train_sweep(network.apply_fn, runs, data, config, learning_rate=lr, progress=progress)
        lam_end = np.where(res.diverged, np.nan, np.asarray(top(res.final_params)))
        lam0_all.append(lam0)
        lam_end_all.append(lam_end.reshape(seeds, len(products)))
        every_step = np.concatenate([res.step_loss, res.train_loss[:, -1:]], axis=1)  # steps 0..steps
        losses_all.append(every_step.reshape(seeds, len(products), -1))
        diverged_all.append(res.diverged_at.reshape(seeds, len(products)))
    return CatapultComparison(
        widths=widths, seeds=seeds, products=products, lambda0=np.asarray(lam0_all),
        lambda_end=np.asarray(lam_end_all), steps=np.arange(steps + 1), train_loss=np.asarray(losses_all),
        diverged_at=np.asarray(diverged_all),
        config={"products": products.tolist(), "steps": steps, "seeds": seeds, "widths": list(widths),
                "data": getattr(data, "name", "data"), "loss": "½Σ(f - y)², full-batch GD, no L2"},
    )  # fmt: skip
