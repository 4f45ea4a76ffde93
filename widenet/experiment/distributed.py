"""Sweeps over several processes: one process per host or per GPU, e.g. Slurm tasks.

Every process runs the same script. `train_shared` gives each process its own contiguous share of
the R runs (`process_share`), trains that share with `train_sweep` on the process's own devices
(`jax.local_devices()`, the share's runs sharded over them), and writes each finished run to a
shared `store.RunStore` folder as its own file: no two processes ever write one file, and no
training step needs another process (no collectives). Runs already in the store are skipped, so an
interrupted sweep resumes where it stopped. `gather` reads the whole sweep back as one
`TrainResult` with the run axis, on any process (or later, on a laptop).

The process index and count come from `jax.distributed` when it is initialised (JAX's
multi-controller runtime; its processes are coupled by the coordinator's start-up, heartbeats and
shutdown barrier, so a dead process brings the others down), or are passed explicitly, e.g.
`process_index=SLURM_PROCID, process_count=SLURM_NTASKS`: fully independent processes, which this
design allows because nothing is communicated (docs/scale.md).

A run's identity in the store is its sweep `name` and index, the training configuration, the
network (the jaxpr of `apply_fn` on the run's parameters), a hash of its own initial parameters,
data, learning rate, L2 (AutoL2's settings), key, sample weights and argument pytrees, and the
caller's `identity`. Functions other than the network (schedules, a weight function, observables)
cannot be hashed: `train_shared` refuses them unless `identity` names them. A changed array input or
network therefore never reads a stale file.

Without `jax.distributed` and explicit indices (one process) `train_shared` trains every run: the
same code runs on a laptop, on one GPU host, or on a cluster.
"""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from ..schedules import AutoL2
from .train import _PER_RUN, TrainConfig, TrainResult, train_sweep

__all__ = ["process_share", "train_shared", "gather"]


def process_share(n_runs, *, process_index=None, process_count=None):
    """The runs process `process_index` of `process_count` owns: the contiguous block
    $[\\lfloor iR/P\\rfloor, \\lfloor (i+1)R/P\\rfloor)$ (shares differ by at most one run).

    Defaults are `jax.process_index()` and `jax.process_count()` (0 and 1 without jax.distributed).
    """
    n_runs = check_int("n_runs", n_runs, low=1)
    count = jax.process_count() if process_count is None else check_int("process_count", process_count, low=1)
    index = jax.process_index() if process_index is None else check_int("process_index", process_index, low=0)
    if index >= count:
        raise ValueError(f"`process_index` must lie in [0, {count - 1}] for {count} processes; got {index}")
    return range(index * n_runs // count, (index + 1) * n_runs // count)


def _digest(*trees):
    """SHA-256 over the bytes, shapes and dtypes of every array leaf of `trees`."""
    h = hashlib.sha256()
    for tree in trees:
        for leaf in jax.tree.leaves(tree):
            a = np.ascontiguousarray(np.asarray(jax.random.key_data(leaf) if _is_typed_key(leaf) else leaf))
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _is_typed_key(leaf):
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _take(tree, runs):
    return None if tree is None else jax.tree.map(lambda a: jnp.asarray(a)[np.asarray(runs)], tree)


def _per_run_value(value, n_runs):
    """A per-run array (R,) of the learning rate or L2, or None when it is a schedule or a rule."""
    if value is None or callable(value) or isinstance(value, AutoL2):
        return None
    value = jnp.asarray(value, dtype=float)
    return jnp.broadcast_to(value, (n_runs,)) if value.ndim == 0 else value


def _run_key(name, i):
    return f"{name}/run{i:06d}"


def _run_identity(name, i, n_runs, config, data_digest, inputs, identity):
    return {"sweep": name, "run": i, "n_runs": n_runs, "train_config": repr(config), "data": data_digest,
            "inputs": _digest(*inputs), "caller": identity}  # fmt: skip


def _keys(key, n_runs):
    """Per-run keys: raw (R, 2) uint32 or typed (R,) keys as given; one key is shared by every run."""
    if key is None:
        return None
    one = jnp.ndim(key) == (0 if _is_typed_key(key) else 1)
    return jnp.broadcast_to(key, (n_runs,) + jnp.shape(key)) if one else key


def _common_digest(apply_fn, params, data, l2, sample_weights):
    """What every run shares: the data, the network's jaxpr (on run 0's parameters), AutoL2's settings
    and an array of sample weights."""
    x = jnp.asarray(data.x_train, dtype=float)
    network = str(jax.make_jaxpr(apply_fn)(jax.tree.map(lambda p: jnp.asarray(p)[0], params), x))
    extra = [repr(l2) if isinstance(l2, AutoL2) else "", network]
    weights = None if sample_weights is None or callable(sample_weights) else sample_weights
    h = hashlib.sha256(_digest(data.x_train, data.y_train, data.x_test, data.y_test, weights).encode())
    for text in extra:
        h.update(text.encode())
    return h.hexdigest()


def _check_functions_named(identity, **functions):
    named = [name for name, value in functions.items() if value is not None and (callable(value) or
             (isinstance(value, dict) and value))]  # fmt: skip
    if named and identity is None:
        raise ValueError(f"`identity` must name the functions {named} (a function cannot be hashed, so a changed "
                         "one would read the old runs): e.g. identity={'schedule': 'cosine, 1e-2 -> 0'}")  # fmt: skip


def _to_values(result: TrainResult):
    values = {"steps": result.steps}
    for name in _PER_RUN:
        values[name] = getattr(result, name)
    for name, value in result.extra.items():
        values[f"extra:{name}"] = np.asarray(value)
    for k, leaf in enumerate(jax.tree.leaves(result.final_params)):
        values[f"param:{k}"] = np.asarray(leaf)
    return values


def train_shared(
    apply_fn,
    params,
    data,
    config: TrainConfig,
    *,
    store,
    name,
    learning_rate,
    l2=0.0,
    key=None,
    sample_weights=None,
    sample_weight_args=None,
    observables=None,
    observable_args=None,
    identity=None,
    progress=False,
    process_index=None,
    process_count=None,
):
    """Train this process's share of the R runs of a sweep and write each run to `store`.

    The training arguments (`apply_fn`, `params`, `data`, `config`, `learning_rate`, `l2`, `key`,
    `sample_weights`, `sample_weight_args`, `observables`, `observable_args`, `progress`) are those of
    `train_sweep`, for the whole sweep (per-run arrays with the leading run axis R): every process
    passes the same full inputs and trains only its share.

    Args:
        store: a `store.RunStore` on a folder every process can write (a shared file system).
        name: the sweep's name in the store (a readable string).
        identity: anything JSON-serialisable that, with the arrays, identifies the sweep; required
            (a ValueError otherwise) when a schedule, a weight function or observables are passed:
            name them here.
        process_index, process_count: default from `jax.distributed` (set them to split a sweep
            by hand, e.g. over Slurm array tasks without `jax.distributed`).

    Returns:
        the run indices this process owns (all now in the store: trained here, or found there).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string naming the sweep; got {name!r}")
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError(f"`params` must be a pytree of arrays with a leading run axis; got {params!r}")
    n_runs = int(jnp.shape(leaves[0])[0])
    share = process_share(n_runs, process_index=process_index, process_count=process_count)
    _check_functions_named(identity, learning_rate=learning_rate if callable(learning_rate) else None,
                           l2=l2 if callable(l2) and not isinstance(l2, AutoL2) else None,
                           sample_weights=sample_weights if callable(sample_weights) else None,
                           observables=observables)  # fmt: skip
    lr, lam = _per_run_value(learning_rate, n_runs), _per_run_value(l2, n_runs)
    keys = _keys(key, n_runs)
    data_digest = _common_digest(apply_fn, params, data, l2, sample_weights)

    def run_identity(i):
        inputs = [_take(t, [i]) for t in (params, lr, lam, keys, sample_weight_args, observable_args)]
        return _run_identity(name, i, n_runs, config, data_digest, inputs, identity)

    missing = [i for i in share if store.get(_run_key(name, i), run_identity(i)) is None]
    if missing:
        result = train_sweep(
            apply_fn, _take(params, missing), data, config,
            learning_rate=learning_rate if lr is None else lr[np.asarray(missing)],
            l2=l2 if lam is None else lam[np.asarray(missing)],
            key=_take(keys, missing), sample_weights=sample_weights,
            sample_weight_args=_take(sample_weight_args, missing), observables=observables,
            observable_args=_take(observable_args, missing), progress=progress, devices=jax.local_devices(),
        )  # fmt: skip
        for j, i in enumerate(missing):
            store.put(_run_key(name, i), _to_values(result.run(j)), run_identity(i))
    return share


def gather(store, name, n_runs, *, apply_fn, params, data, config: TrainConfig, learning_rate, l2=0.0, key=None,
           sample_weights=None, sample_weight_args=None, observable_args=None, identity=None):  # fmt: skip
    """The whole sweep `name` from `store` as one `TrainResult` with the run axis.

    Takes the same inputs as `train_shared` (they identify each run's file; `params` also gives the
    structure of `final_params`). Raises a ValueError naming the runs not (yet) in the store.
    """
    n_runs = check_int("n_runs", n_runs, low=1)
    lr, lam = _per_run_value(learning_rate, n_runs), _per_run_value(l2, n_runs)
    keys = _keys(key, n_runs)
    data_digest = _common_digest(apply_fn, params, data, l2, sample_weights)
    found, missing = [], []
    for i in range(n_runs):
        inputs = [_take(t, [i]) for t in (params, lr, lam, keys, sample_weight_args, observable_args)]
        values = store.get(_run_key(name, i), _run_identity(name, i, n_runs, config, data_digest, inputs, identity))
        (missing.append(i) if values is None else found.append(values))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"sweep {name!r}: {len(missing)} of {n_runs} runs are not in the store (runs {shown}); "
                         "each run's file is found by its inputs, so the network, data, hyperparameters, "
                         "`identity` and the float64 setting (jax_enable_x64) must be those of train_shared")  # fmt: skip
    structure = jax.tree.structure(params)
    stack = lambda name: np.stack([v[name] for v in found])  # noqa: E731
    return TrainResult(
        steps=found[0]["steps"],
        **{field: (None if found[0][field] is None else stack(field)) for field in _PER_RUN},
        extra={k[len("extra:"):]: stack(k) for k in found[0] if k.startswith("extra:")},
        final_params=jax.tree.unflatten(structure, [stack(f"param:{k}") for k in range(structure.num_leaves)]),
    )  # fmt: skip
