"""The shared trainer: full-batch GD or minibatch SGD on stax networks, jit + lax.scan in chunks.

Objective (docs/notation.md): $L_{tot}(\\theta) = \\sum_i w_i(s)\\,\\ell(f_\\theta(x_i), y_i)
+ \\frac{\\lambda(s)}{2}\\|\\theta\\|^2$ (a sum over samples, as the L2 paper), update
$\\theta_{s+1} = \\theta_s - \\eta(s)\\nabla L_{tot}(\\theta_s)$. SGD uses the unbiased estimate
$\\frac{n}{b}\\sum_{i \\in B_s}$ of the sum, with batch $B_s$ drawn from `fold_in(key, s)` so that a
resumed or repeated run draws the same batches. Time is $t_s = \\sum_{r<s}\\eta(r)$ ($=\\eta s$ for a
constant rate), the gradient-flow time of the theory.

Every run is a batch of R runs (seeds and hyperparameters) vmapped together: one compile serves a
whole sweep. A run whose loss becomes non-finite or exceeds `divergence_loss` is frozen and
reported with `diverged_at` (the step), never as NaNs or an exception.
"""

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses, spectra
from .._checks import check_int, check_range, check_shape
from ..networks import empirical_ntk
from ..schedules import AutoL2

__all__ = ["TrainConfig", "TrainResult", "train", "train_sweep", "sweep_cost", "SweepCost", "batch_indices"]


@dataclass(frozen=True)
class TrainConfig:
    """Static training configuration (hashable; changing it recompiles).

    Attributes:
        steps: number of updates.
        record_every: steps between records (the chunk length of the scanned loop).
        loss: "mse" or "cross_entropy".
        batch_size: None for full-batch GD, else the SGD minibatch size.
        n_eigs: number of top empirical-NTK eigenvalues recorded on the training set (default 0: none;
            each record then costs an NTK and its eigendecomposition, in the compiled program).
        n_hessian_eigs: number of top Hessian eigenvalues of the (weighted) data loss recorded, by
            Lanczos of order `lanczos_order` on Hessian-vector products (0: none).
        ntk_points: at most this many training points enter the recorded NTK.
        ntk_implementation: neural-tangents' empirical-NTK implementation for those records (1, 2 or
            3; `networks.empirical_ntk`): 3 (structured derivatives) is fastest for stax networks, 1 is
            needed for a model whose parameters are coupled (`networks.scale_invariant`).
        record_outputs: record network outputs on train and test points.
        divergence_loss: a training loss above this (or non-finite) marks the run diverged.
        record_step_loss: also return `TrainResult.step_loss`, the loss of every update, which the
            gradient computes anyway: a loss curve at every step at no extra cost, with records (and
            their kernels or Hessians) as sparse as `record_every`. Recording every step through
            `record_every=1` costs a forward pass per step and a record: a 250-step GD sweep of 75
            runs at width 1024 took 57 s that way against 36 s with `record_every=25` (2 cores).
    """

    steps: int
    record_every: int = 10
    loss: str = "mse"
    batch_size: int | None = None
    n_eigs: int = 0
    n_hessian_eigs: int = 0
    lanczos_order: int = spectra.DEFAULT_ORDER
    ntk_points: int = 512
    ntk_implementation: int = 3
    record_outputs: bool = True
    divergence_loss: float = 1e12
    record_step_loss: bool = False

    def __post_init__(self):
        check_int("steps", self.steps, low=1)
        check_int("record_every", self.record_every, low=1)
        check_int("n_eigs", self.n_eigs, low=0)
        check_int("n_hessian_eigs", self.n_hessian_eigs, low=0)
        check_int("lanczos_order", self.lanczos_order, low=1)
        check_int("ntk_points", self.ntk_points, low=1)
        check_int("ntk_implementation", self.ntk_implementation, low=1, high=3)
        check_range("divergence_loss", self.divergence_loss, low=0.0, low_open=True)
        losses.get(self.loss)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)


@dataclass(frozen=True)
class TrainResult:
    """Records on the grid `steps` (R runs along axis 0 for a sweep, none for `train`).

    Attributes:
        steps: (K,) recorded steps, 0 included. t: (..., K) time $\\sum \\eta$ at those steps.
        train_loss: data loss without L2 and without weights. weighted_loss: with the current weights.
        l2: (..., K) the L2 coefficient in effect at each record (AutoL2: as the rule has set it).
        test_loss, train_accuracy, test_accuracy, param_norm ($\\|\\theta\\|$): (..., K).
        ntk_top: (..., K, n_eigs) top empirical-NTK eigenvalues, descending.
        hessian_top: (..., K, n_hessian_eigs) top Hessian eigenvalues of the weighted data loss.
        f_train: (..., K, n, C), f_test: (..., K, m, C) outputs (if recorded).
        diverged_at: (...,) step at which the run diverged, -1 if it did not.
        step_loss: (..., steps) with `TrainConfig(record_step_loss=True)`, else None: entry s is the
            objective the gradient of update s was taken of, at the parameters before update s, without
            L2: full-batch GD, the training loss at step s (the `train_loss` record at step s up to
            rounding); with `sample_weights`, the weighted loss (`weighted_loss`); SGD, the batch's
            loss times n/b (an unbiased estimate of the training loss). NaN after `diverged_at`; the
            entry at `diverged_at` is the loss that marked the divergence.
        extra: {name: (..., K, ...)} values of the caller's `observables` at each record.
        final_params: parameters at the end (frozen at divergence).
    """

    steps: np.ndarray
    t: np.ndarray
    train_loss: np.ndarray
    weighted_loss: np.ndarray
    l2: np.ndarray
    test_loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    param_norm: np.ndarray
    ntk_top: np.ndarray
    hessian_top: np.ndarray
    f_train: np.ndarray | None
    f_test: np.ndarray | None
    diverged_at: np.ndarray
    step_loss: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    final_params: object = field(repr=False, default=None)

    @property
    def diverged(self):
        return self.diverged_at >= 0

    def run(self, i):
        """The i-th run of a sweep as a single-run result."""
        take = lambda a: None if a is None else np.asarray(a)[i]  # noqa: E731
        return TrainResult(
            steps=self.steps,
            **{name: take(getattr(self, name)) for name in _PER_RUN},
            extra={name: take(value) for name, value in self.extra.items()},
            final_params=jax.tree.map(lambda p: p[i], self.final_params),
        )


_PER_RUN = (
    "t", "train_loss", "weighted_loss", "l2", "test_loss", "train_accuracy", "test_accuracy",
    "param_norm", "ntk_top", "hessian_top", "f_train", "f_test", "diverged_at", "step_loss",
)  # fmt: skip


def batch_indices(key, step, n, batch_size):
    """The SGD minibatch of `step`: `batch_size` distinct indices out of n, from `fold_in(key, step)`.

    The trainer draws its batches with this function, so a caller can reproduce any step's batch
    (e.g. to compute that batch's critical learning rate)."""
    n = check_int("n", n, low=1)
    check_int("batch_size", batch_size, low=1, high=n, meaning=f"distinct indices out of n={n}")
    return jax.random.choice(jax.random.fold_in(key, step), n, (batch_size,), replace=False)


def _value_at(schedule, step, base):
    """A hyperparameter at `step`: a callable schedule, else the run's own (sweepable) value."""
    return schedule(step) if callable(schedule) else base


def _check_params_and_outputs(apply_fn, params, x, y, xt, yt):
    """The number of runs R; the network must accept the inputs and give as many outputs as the targets."""
    leaves = jax.tree.leaves(params)
    if not leaves or any(jnp.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError("`params` must be a pytree of arrays with a leading run axis R (see `train` for one run)")
    n_runs = jnp.shape(leaves[0])[0]
    if any(jnp.shape(leaf)[0] != n_runs for leaf in leaves):
        raise ValueError(
            f"every leaf of `params` must have the same leading run axis; got {[jnp.shape(v)[0] for v in leaves]}"
        )
    one_run = jax.tree.map(lambda p: p[0], params)
    try:
        out = jax.eval_shape(apply_fn, one_run, x[:1])
    except Exception as err:  # noqa: BLE001 - re-raised with what the user controls named
        raise ValueError(
            f"`apply_fn` failed on `data.x_train` rows of shape {x.shape[1:]} (are the inputs of the dimension "
            f"the network was initialised for?): {type(err).__name__}: {err}"
        ) from err
    if out.shape[-1] != y.shape[1]:
        raise ValueError(
            f"`data.y_train` has {y.shape[1]} output column(s) but the network gives {out.shape[-1]}; "
            "targets and network outputs must agree (no broadcasting)"
        )
    if xt.shape[0] and (yt.shape[0] != xt.shape[0] or yt.shape[1] != y.shape[1] or xt.shape[1:] != x.shape[1:]):
        raise ValueError(
            f"test data must match the training data: x_test {xt.shape} and y_test {yt.shape} against "
            f"x_train {x.shape} and y_train {y.shape}"
        )
    return n_runs


def _as_outputs(y):
    y = jnp.asarray(y, dtype=float)
    return y[:, None] if y.ndim == 1 else y


def _per_run(name, value, n_runs, meaning):
    """A scalar or (R,) hyperparameter as an (R,) array; any other shape is an error."""
    array = jnp.asarray(value, dtype=float)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != n_runs):
        raise ValueError(
            f"`{name}` must be a scalar or have one value per run, shape ({n_runs},); got shape {array.shape}"
        )
    array = jnp.broadcast_to(array, (n_runs,))
    check_range(name, array, low=0.0, low_open=name == "learning_rate", meaning=meaning)
    return array


def _check_schedule(name, schedule, record_steps, *, positive):
    """Evaluate a user's schedule at every record step before training; a negative (or, for the
    learning rate, zero) or non-finite value is an error naming the first such step."""
    steps = np.asarray(record_steps)
    try:  # one vectorised evaluation; a schedule that cannot be vmapped is called step by step
        values = np.asarray(jax.vmap(schedule)(jnp.asarray(steps)), dtype=float).reshape(len(steps), -1)
    except Exception:  # noqa: BLE001
        values = np.stack([np.asarray(schedule(int(s)), dtype=float).reshape(-1) for s in steps])
    bad = ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
    if np.any(bad):
        first = int(np.argmax(np.any(bad, axis=1)))
        allowed = "> 0" if positive else ">= 0"
        raise ValueError(
            f"`{name}` schedule must return finite values {allowed}; at step {steps[first]} it returned "
            f"{values[first].squeeze()}"
        )


def train_sweep(
    apply_fn: Callable,
    params,
    data,
    config: TrainConfig,
    *,
    learning_rate,
    l2=0.0,
    key=None,
    sample_weights=None,
    sample_weight_args=None,
    observables=None,
    observable_args=None,
    progress=False,
    devices=None,
    run_batch=None,
):
    """Train R runs at once (vmapped): parameters, learning rates, L2 and keys along axis 0.

    The run axis is sharded over `devices` (default: all of this process's `jax.local_devices()`,
    which is every device without `jax.distributed`), padded with copies of
    the last run to a multiple of their number: one program, each device training its share of the
    runs; records are gathered to the host once, at the end. On one device nothing is moved.

    Args:
        apply_fn: `(params, x) -> (n, C)`, a stax network or any model with that signature
            (e.g. `neural_tangents.linearize(apply_fn, params0)`).
        params: pytree whose leaves have a leading run axis R.
        data: a `widenet.data.Dataset` (x_train, y_train, x_test, y_test).
        config: `TrainConfig`.
        learning_rate: (R,) array, or a callable schedule `step -> eta` shared by all runs.
        l2: (R,) array or scalar, a callable schedule `step -> lambda`, or `schedules.auto_l2(...)`
            (AutoL2: λ set by the measured empirical loss and training error, per run).
        key: (R,) PRNG keys for SGD batches (required when `config.batch_size` is set).
        sample_weights: None, an (n,) array, or a callable `step -> (n,)` of per-sample loss weights;
            with `sample_weight_args` (a pytree with a leading run axis) it is called as
            `sample_weights(step, args_of_the_run)`, so weight schedules sweep under one compile.
        observables: optional {name: fn(params, step) -> array}, recorded at every record (vmapped over
            runs, jitted); `step` is the recorded step, i.e. the next update is step `step`.
        observable_args: optional pytree with a leading run axis; the observables are then called as
            `fn(params, step, args_of_the_run)` (e.g. each run's SGD key, to look at the batch that
            step `step` will use: `batch_indices(key, step, n, b)`).
        progress: True (or a label string) to print progress to stderr at most every 5 s with an ETA,
            or a callable `(done_steps, total_steps)`.
        devices: the devices to shard the runs over (default this process's local devices;
            `[jax.local_devices()[0]]` for one).
        run_batch: None (all runs in one vmapped batch) or b: the runs are trained b at a time,
            vmapped within a group and the groups in sequence inside the same compiled program
            (`jax.lax.map(..., batch_size=b)`), with the same updates up to
            floating-point rounding (vmapped and sequential matmuls round differently; chaotic runs,
            such as oscillating losses, amplify that). On a CPU with wide networks a
            small b keeps a group's activations in cache: at width 512 on 2 cores, 16 runs vmapped
            at once took 1.4x the time of 16 separate `train` calls and groups of 4 0.77x
            (docs/performance.md). One device only.

    Returns:
        `TrainResult` with a leading run axis.
    """
    setup = dict(
        learning_rate=learning_rate, l2=l2, key=key, sample_weights=sample_weights, sample_weight_args=sample_weight_args,
        observables=observables, observable_args=observable_args, devices=devices,
    )  # fmt: skip
    engine, hyper, carry, arrays, n_runs = _setup(apply_fn, params, data, config, **setup, run_batch=run_batch)
    n_chunks = -(-config.steps // config.record_every)
    block = _block(n_chunks, progress)
    first = engine.observe(hyper, carry, arrays, 0)
    blocks = []
    started = time.perf_counter()
    for start in range(0, n_chunks, block):
        size = min(block, n_chunks - start)
        carry, records = engine.run(hyper, carry, arrays, start * config.record_every, size)
        blocks.append(records)
        if progress:
            jax.block_until_ready(carry[1])  # the host waits only to report, at most ~50 times a run
            _report(progress, min((start + size) * config.record_every, config.steps), config.steps, started)
    first, blocks, carry = jax.device_get((first, blocks, carry))  # one transfer for the whole run
    # drop the padding runs that filled the last device
    first, blocks, carry = jax.tree.map(lambda a: a[:n_runs], (first, blocks, carry))
    diverged_at = np.asarray(carry[2])
    step_loss = None
    if config.record_step_loss:  # each block (R, records, record_every) -> (R, steps); no-op steps past the end dropped
        step_loss = np.concatenate([np.asarray(b.pop("step_loss")).reshape(n_runs, -1) for b in blocks], axis=1)
        step_loss = step_loss[:, : config.steps]
        step_loss = np.where((diverged_at[:, None] >= 0) & (np.arange(config.steps) > diverged_at[:, None]),
                             np.nan, step_loss)  # fmt: skip
    # the first record is (R, ...); each block's records are (R, records, ...)
    stacked = {
        name: np.concatenate([np.asarray(first[name])[:, None]] + [np.asarray(b[name]) for b in blocks], axis=1)
        for name in first
    }
    steps = np.minimum(np.arange(n_chunks + 1) * config.record_every, config.steps)
    after = (diverged_at[:, None] >= 0) & (steps[None, :] > diverged_at[:, None])
    times = stacked.pop("t")
    for name, value in stacked.items():
        mask = after.reshape(after.shape + (1,) * (value.ndim - 2))
        stacked[name] = np.where(mask, np.nan, value)
    extra = {name[len("extra:") :]: stacked.pop(name) for name in list(stacked) if name.startswith("extra:")}
    return TrainResult(
        steps=steps,
        t=times,
        extra=extra,
        ntk_top=stacked.pop("ntk_top", np.zeros((n_runs, len(steps), 0))),
        hessian_top=stacked.pop("hessian_top", np.zeros((n_runs, len(steps), 0))),
        f_train=stacked.pop("f_train", None),
        f_test=stacked.pop("f_test", None),
        diverged_at=diverged_at,
        step_loss=step_loss,
        final_params=jax.tree.map(jnp.asarray, carry[0]),
        **stacked,
    )


def _block(n_chunks, progress):
    """Records per compiled call: one block when nobody watches; about 50 (a report each) when asked."""
    return n_chunks if not progress else max(1, -(-n_chunks // 50))


@dataclass(frozen=True)
class SweepCost:
    """What a `train_sweep` call asks of a device, from XLA's analysis of its compiled programs on
    this backend (compiled here, not run).

    Attributes:
        runs, steps, records: R, the updates and the records after step 0.
        flops_per_step: floating-point operations of one update of all R runs (XLA's count of one
            iteration of the scanned step; operations XLA hands to a library call, such as `eigh`,
            count as few or none). With `run_batch`, counted on the same runs vmapped in one program
            (the same arithmetic: XLA would count one group of `lax.map`).
        flops_per_record: of one record of all R runs (losses, kernels, Hessian eigenvalues). A loop
            inside a record counts once: Lanczos's Hessian eigenvalues count one Hessian-vector
            product, not `lanczos_order`, so records with Hessian eigenvalues are undercounted.
        flops: `steps * flops_per_step + (records + 1) * flops_per_record`.
        memory_bytes: arguments + outputs + temporaries of the compiled training program (less what
            XLA aliases), plus the records of the blocks before the last, which `train_sweep` keeps on
            the device until its one transfer: what the sweep holds on one device at its end. The buffer sizes are the same on a
            GPU; its temporaries depend on its fusion, so read this as an estimate there.
        compile_seconds: time spent here compiling both programs.
    """

    runs: int
    steps: int
    records: int
    flops_per_step: float
    flops_per_record: float
    flops: float
    memory_bytes: int
    compile_seconds: float

    def seconds_at(self, flop_rate):
        """The time the whole sweep needs at `flop_rate` FLOP/s: a lower bound on a device whose
        peak that is (small programs on a GPU are bound by kernel launches, not FLOPs)."""
        check_range("flop_rate", flop_rate, low=0.0, low_open=True, meaning="FLOP/s")
        return self.flops / flop_rate


def sweep_cost(
    apply_fn: Callable,
    params,
    data,
    config: TrainConfig,
    *,
    learning_rate,
    l2=0.0,
    key=None,
    sample_weights=None,
    sample_weight_args=None,
    observables=None,
    observable_args=None,
    progress=False,
    devices=None,
    run_batch=None,
) -> SweepCost:
    """The cost of `train_sweep` with the same arguments, without training: its inputs are checked
    as `train_sweep` checks them, and its two programs (a block of records, and one record) are
    compiled, not run, for XLA's FLOP count and memory analysis (`SweepCost`). Use it to size a sweep
    for a device before spending time on it (`python -m validate.preflight`)."""
    started = time.perf_counter()
    setup = dict(
        learning_rate=learning_rate, l2=l2, key=key, sample_weights=sample_weights, sample_weight_args=sample_weight_args,
        observables=observables, observable_args=observable_args, devices=devices,
    )  # fmt: skip
    engine, hyper, carry, arrays, n_runs = _setup(apply_fn, params, data, config, **setup, run_batch=run_batch)
    n_chunks = -(-config.steps // config.record_every)
    block = _block(n_chunks, progress)
    program = engine.run.lower(hyper, carry, arrays, 0, block).compile()
    counted = program
    if run_batch is not None:  # XLA counts lax.map's body (one group) once: count the vmapped program instead
        whole = _setup(apply_fn, params, data, config, **setup, run_batch=None)
        counted = whole[0].run.lower(*whole[1:4], 0, block).compile()
    record = engine.observe.lower(hyper, carry, arrays, 0).compile()
    # XLA counts a loop body once: the block program is one step and one record of every run
    per_record = _flops(record)
    per_step = _flops(counted) - per_record
    if per_step < 0:
        raise RuntimeError(
            f"XLA counts {_flops(counted):.3g} FLOPs for a block of steps and {per_record:.3g} for one record alone; "
            "the step's count would be negative, so this backend's cost analysis cannot size the sweep"
        )
    memory = program.memory_analysis()
    held = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
    # train_sweep keeps every block's records on the device until one transfer at the end
    carry_bytes = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(carry))
    n_blocks = -(-n_chunks // block)
    held += (n_blocks - 1) * max(memory.output_size_in_bytes - carry_bytes, 0)
    return SweepCost(
        runs=n_runs, steps=config.steps, records=n_chunks, flops_per_step=per_step, flops_per_record=per_record,
        flops=config.steps * per_step + (n_chunks + 1) * per_record,
        memory_bytes=int(held - memory.alias_size_in_bytes), compile_seconds=time.perf_counter() - started,
    )  # fmt: skip


def _flops(compiled):
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis  # a list in older jax
    return float((analysis or {}).get("flops", 0.0))


def _setup(apply_fn, params, data, config, *, learning_rate, l2, key, sample_weights, sample_weight_args,
           observables, observable_args, devices, run_batch):  # fmt: skip
    """Check a sweep's inputs and build its engine and device-placed state (shared by `train_sweep`
    and `sweep_cost`). Returns (engine, hyper, carry, arrays, n_runs)."""
    x, y = jnp.asarray(data.x_train, dtype=float), _as_outputs(data.y_train)
    xt, yt = jnp.asarray(data.x_test, dtype=float), _as_outputs(data.y_test)
    n = x.shape[0]
    check_shape("data.y_train", y, (n, None), other=f"x_train's n={n}")
    n_runs = _check_params_and_outputs(apply_fn, params, x, y, xt, yt)
    if run_batch is not None:
        check_int("run_batch", run_batch, low=1, meaning="runs trained together in one vmapped group")
        if len(jax.local_devices() if devices is None else devices) > 1:
            raise ValueError(
                "`run_batch` groups runs on one device; with several devices the runs are sharded instead: "
                "pass devices=[jax.local_devices()[0]] to use it"
            )
    checked_steps = sorted({0, config.steps, *range(0, config.steps, config.record_every)})
    if callable(learning_rate):
        _check_schedule("learning_rate", learning_rate, checked_steps, positive=True)
    else:
        learning_rate = _per_run("learning_rate", learning_rate, n_runs, "learning rate eta > 0")
    rule = l2 if isinstance(l2, AutoL2) else None
    if rule is None and callable(l2):
        _check_schedule("l2", l2, checked_steps, positive=False)
    elif rule is None:
        l2 = _per_run("l2", l2, n_runs, "L2 coefficient lambda >= 0")
    if sample_weights is not None and not callable(sample_weights):
        check_shape("sample_weights", sample_weights, (n,), other=f"the training set's n={n}")
    batch = config.batch_size
    if batch is not None:
        if batch > n:
            raise ValueError(f"`batch_size` must be <= the training set size {n}; got {batch}")
        if key is None:
            raise ValueError("`key` is required for SGD (config.batch_size is set)")
    if key is None:
        key = jnp.zeros((n_runs, 2), dtype=jnp.uint32)
    key = jnp.broadcast_to(key, (n_runs,) + jnp.shape(key)[-1:]) if jnp.ndim(key) == 1 else key
    if sample_weights is not None and not callable(sample_weights):
        arrays_weights, weights_fn = jnp.asarray(sample_weights, dtype=float), None
    else:
        arrays_weights, weights_fn = None, sample_weights
    statics = (
        apply_fn,
        config,
        learning_rate if callable(learning_rate) else None,
        l2 if callable(l2) or rule is not None else None,
        weights_fn,
        tuple((observables or {}).items()),
        run_batch,
    )
    try:
        engine = _engine(*statics)
    except TypeError:  # an unhashable callable: build (and compile) for this call alone
        engine = _engine.__wrapped__(*statics)
    arrays = {"x": x, "y": y, "xt": xt, "yt": yt, "w": arrays_weights}
    hyper = {
        "lr": None if callable(learning_rate) else learning_rate,
        "l2": None if callable(l2) or rule is not None else l2,
        "key": key,
        "w_args": sample_weight_args,
        "o_args": observable_args,
    }
    rule_state = jnp.zeros(n_runs) if rule is None else jax.tree.map(lambda v: jnp.full(n_runs, v), rule.init())
    carry = (params, jnp.zeros(n_runs), jnp.full(n_runs, -1, dtype=int), rule_state)
    hyper, carry, arrays = _place_on_devices(hyper, carry, arrays, n_runs, devices)

    return engine, hyper, carry, arrays, n_runs


def _place_on_devices(hyper, carry, arrays, n_runs, devices):
    """Shard the run axis of `hyper` and `carry` over `devices` (a 1-D mesh "runs"), padding with
    copies of the last run; `arrays` (the data) are replicated. A no-op on one device."""
    devices = list(jax.local_devices() if devices is None else devices)
    if len(devices) <= 1:
        return hyper, carry, arrays
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("runs",))
    padded = -(-n_runs // len(devices)) * len(devices)

    def pad(a):
        a = jnp.asarray(a)
        if padded > n_runs:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], padded - n_runs, axis=0)])
        return jax.device_put(a, NamedSharding(mesh, PartitionSpec("runs")))

    replicated = NamedSharding(mesh, PartitionSpec())
    arrays = jax.tree.map(lambda a: jax.device_put(a, replicated), arrays)
    return jax.tree.map(pad, hyper), jax.tree.map(pad, carry), arrays


@dataclass(frozen=True)
class _Engine:
    """The compiled pieces of one static training configuration (shared by every call that has it)."""

    run: Callable  # (hyper, carry, arrays, start_step, n_records) -> (carry, records of those records)
    observe: Callable  # (hyper, carry, arrays, step) -> records at `step`


@functools.lru_cache(maxsize=64)
def _engine(apply_fn, config, learning_rate_fn, l2_fn, weights_fn, observables, run_batch=None):
    """Build and jit the training step, the records and a scanned block of records, once per static
    configuration: repeated `train`/`train_sweep` calls with the same network, config, schedules and
    shapes reuse the compiled program. Data and hyperparameters are arguments, never constants."""
    loss_fn = losses.get(config.loss)
    ntk_fn = empirical_ntk(apply_fn, implementation=config.ntk_implementation) if config.n_eigs else None
    rule = l2_fn if isinstance(l2_fn, AutoL2) else None
    batch = config.batch_size

    def weights_at(arrays, step, args):
        if weights_fn is None:
            return arrays["w"]
        return weights_fn(step) if args is None else weights_fn(step, args)

    def data_loss(p, xb, yb, wb):
        return loss_fn(apply_fn(p, xb), yb, wb)

    def step_fn(hyper, arrays, carry, step):
        x, y = arrays["x"], arrays["y"]
        n = x.shape[0]
        params, t, diverged_at, rule_state = carry
        lr = _value_at(learning_rate_fn, step, hyper["lr"])
        if rule is None:
            lam = _value_at(l2_fn, step, hyper["l2"])
        else:  # AutoL2: measure the empirical loss and training error every `measure_every` steps
            f = apply_fn(params, x)
            measured = rule.update(rule_state, step, loss_fn(f, y, None), 1.0 - losses.accuracy(f, y))
            due = (step % rule.measure_every == 0) & (step < config.steps) & (diverged_at < 0)
            rule_state = jax.tree.map(lambda new, old: jnp.where(due, new, old), measured, rule_state)
            lam = rule_state.l2
        w = weights_at(arrays, step, hyper["w_args"])
        if batch is None:
            value, grads = jax.value_and_grad(data_loss)(params, x, y, w)
            scale = 1.0
        else:
            idx = batch_indices(hyper["key"], step, n, batch)
            wb = None if w is None else w[idx]
            value, grads = jax.value_and_grad(data_loss)(params, x[idx], y[idx], wb)
            scale = n / batch
            value = value * scale
        active = step < config.steps  # the last chunk may reach past `steps`: those steps are no-ops
        bad = (~jnp.isfinite(value) | (value > config.divergence_loss)) & active
        newly = bad & (diverged_at < 0)
        diverged_at = jnp.where(newly, step, diverged_at)
        stop = (diverged_at >= 0) | ~active
        new = jax.tree.map(lambda p, g: p - lr * (scale * g + lam * p), params, grads)
        params = jax.tree.map(lambda old, upd: jnp.where(stop, old, upd), params, new)
        t = jnp.where(stop, t, t + lr)
        return (params, t, diverged_at, rule_state), (value if config.record_step_loss else None)

    def observe(hyper, carry, arrays, step):
        params = carry[0]
        x, y, xt, yt = arrays["x"], arrays["y"], arrays["xt"], arrays["yt"]
        f, ft = apply_fn(params, x), apply_fn(params, xt)
        w = weights_at(arrays, step, hyper["w_args"])
        out = {
            "t": carry[1],
            "l2": carry[3].l2 if rule is not None else _value_at(l2_fn, step, hyper["l2"]) * jnp.ones(()),
            "train_loss": loss_fn(f, y, None),
            "weighted_loss": loss_fn(f, y, w),
            "test_loss": loss_fn(ft, yt, None) if xt.shape[0] else jnp.asarray(jnp.nan),
            "train_accuracy": losses.accuracy(f, y),
            "test_accuracy": losses.accuracy(ft, yt) if xt.shape[0] else jnp.asarray(jnp.nan),
            "param_norm": jnp.sqrt(sum(jnp.sum(p**2) for p in jax.tree.leaves(params))),
        }
        if ntk_fn is not None:
            eigs = jnp.linalg.eigvalsh(ntk_fn(x[: config.ntk_points], None, params))
            out["ntk_top"] = eigs[::-1][: config.n_eigs]
        if config.n_hessian_eigs:
            out["hessian_top"] = spectra.hessian_top_eigenvalues(
                lambda p: data_loss(p, x, y, w), params, k=config.n_hessian_eigs, order=config.lanczos_order,
                key=jax.random.fold_in(jax.random.PRNGKey(0), step),
            )  # fmt: skip
        if config.record_outputs:
            out["f_train"], out["f_test"] = f, ft
        for name, fn in observables:
            args = hyper["o_args"]
            out["extra:" + name] = fn(params, step) if args is None else fn(params, step, args)
        return out

    def records(hyper, carry, arrays, start, n_records):
        def one_record(carry, r):
            first = start + r * config.record_every
            steps = first + jnp.arange(config.record_every)
            carry, values = jax.lax.scan(lambda c, s: step_fn(hyper, arrays, c, s), carry, steps)
            done = jnp.minimum(first + config.record_every, config.steps)
            out = observe(hyper, carry, arrays, done)
            if config.record_step_loss:
                out["step_loss"] = values  # (record_every,): the losses of the steps this record ends
            return carry, out

        return jax.lax.scan(one_record, carry, jnp.arange(n_records))

    if run_batch is None:
        run = jax.jit(_over_runs(records, in_axes=(0, 0, None, None, None)), static_argnums=4)
    else:  # groups of `run_batch` runs, vmapped within a group, the groups in sequence

        def grouped(hyper, carry, arrays, start, n_records):
            def one_run(hc):
                return records(hc[0], hc[1], arrays, start, n_records)

            return jax.lax.map(one_run, (hyper, carry), batch_size=run_batch)

        run = jax.jit(grouped, static_argnums=4)
    observe_all = jax.jit(_over_runs(observe, in_axes=(0, 0, None, None)))
    return _Engine(run=run, observe=observe_all)


def _over_runs(fn, in_axes):
    """`fn` vmapped over the run axis of its first two arguments (hyper, carry), except for a single
    run, which is traced without the axis and given it back: XLA's CPU products with a batch of 1
    are slower than plain ones (a 2000-step run at width 512: 1.6x, docs/performance.md)."""
    batched = jax.vmap(fn, in_axes=in_axes)

    def call(hyper, carry, *rest):
        if jax.tree.leaves(carry)[0].shape[0] != 1:
            return batched(hyper, carry, *rest)
        first = jax.tree.map(lambda a: a[0], (hyper, carry))
        return jax.tree.map(lambda a: a[None], fn(*first, *rest))

    return call


_REPORT_EVERY = 5.0  # seconds between progress lines
_last_report = [0.0]


def _report(progress, done, total, started):
    """Progress between blocks (never from inside jitted code): a line with the step, the elapsed
    time and an ETA at most every `_REPORT_EVERY` seconds, and at the end; `progress` may be a
    callable `(done, total)` instead, or a string that labels the lines."""
    if not progress:
        return
    if callable(progress):
        progress(done, total)
        return
    now = time.perf_counter()
    if done < total and now - _last_report[0] < _REPORT_EVERY and done > 0:
        return
    _last_report[0] = now
    elapsed = now - started
    eta = elapsed * (total - done) / done if done else float("nan")
    label = f"{progress}: " if isinstance(progress, str) else ""
    print(f"    {label}step {done}/{total} ({elapsed:.1f} s, ETA {eta:.0f} s)", file=sys.stderr, flush=True)


def train(
    apply_fn,
    params,
    data,
    config,
    *,
    learning_rate,
    l2=0.0,
    key=None,
    sample_weights=None,
    observables=None,
    progress=False,
):
    """Train one network; the same engine as `train_sweep` with a single run.

    Args: as `train_sweep`, without the run axis (`learning_rate`, `l2` scalars or schedules, `key`
    one PRNG key).

    Returns:
        `TrainResult` without a run axis.

    Example:
        >>> net = networks.mlp((512,)); params = net.init(jax.random.key(0), 8)
        >>> res = train(net.apply_fn, params, data, TrainConfig(steps=100), learning_rate=0.1, l2=1e-3)
    """
    batched = jax.tree.map(lambda p: jnp.asarray(p)[None], params)
    lr = learning_rate if callable(learning_rate) else jnp.asarray(learning_rate, dtype=float)[None]
    lam = l2 if callable(l2) or isinstance(l2, AutoL2) else jnp.asarray(l2, dtype=float)[None]
    keys = None if key is None else jnp.asarray(key)[None]
    result = train_sweep(
        apply_fn,
        batched,
        data,
        config,
        learning_rate=lr,
        l2=lam,
        key=keys,
        sample_weights=sample_weights,
        observables=observables,
        progress=progress,
    )
    return result.run(0)
