"""Results as labelled arrays: training runs and theory solutions as `xarray.Dataset`, saved to netCDF.

A `TrainResult` becomes a Dataset with dimensions `run` (for a sweep), `record` (with coordinates
`step` and, per run, the gradient-flow time `t`), `ntk_eig`, `hessian_eig`, `train_sample`,
`test_sample` and `output`; a theory `FunctionSpaceSolution` one with `time`, `train_sample`,
`test_sample` and `output`. Units and meanings sit in each variable's attrs; the configuration
that produced the result (any JSON-able dict: a `TrainConfig`, hyperparameters, a scenario's size)
sits in the Dataset's attrs as JSON. `save` and `load` round-trip losslessly through netCDF-4
(h5netcdf): dtypes, NaNs and attrs included. Final parameters are stored as their leaves
(`param_0`, `param_1`, ...); `train_result` rebuilds the pytree when given a template.

Example:
    >>> ds = results.from_train(res, config={"width": 512, "learning_rate": 0.1})
    >>> results.save(ds, "run.nc"); again = results.load("run.nc")
    >>> results.train_result(again, params_like=params0)   # a TrainResult again
"""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

__all__ = ["from_train", "from_solution", "train_result", "solution", "save", "load"]

_UNITS = {
    "t": "gradient-flow time t = sum of learning rates (docs/notation.md)",
    "train_loss": "loss summed over training samples, no L2, no weights",
    "weighted_loss": "loss summed over training samples with the sample weights in effect",
    "test_loss": "loss summed over test samples",
    "l2": "L2 coefficient lambda in effect",
    "train_accuracy": "fraction",
    "test_accuracy": "fraction",
    "param_norm": "|theta|",
    "ntk_top": "top empirical-NTK eigenvalues on the training set, descending",
    "hessian_top": "top Hessian eigenvalues of the weighted data loss, descending",
    "f_train": "network outputs on the training set",
    "f_test": "network outputs on the test set",
    "diverged_at": "step at which the run diverged, -1 if it did not",
    "step_loss": "the loss each update's gradient was taken of, no L2 (TrainResult.step_loss)",
}
_RECORD_DIMS = {
    "ntk_top": ("ntk_eig",),
    "hessian_top": ("hessian_eig",),
    "f_train": ("train_sample", "output"),
    "f_test": ("test_sample", "output"),
}


def _config_attr(config):
    if config is None:
        return "{}"
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return json.dumps(config, default=lambda v: np.asarray(v).tolist(), sort_keys=True)


def from_train(result, *, config=None):
    """A `TrainResult` (one run or a sweep) as an `xarray.Dataset`; `config` goes into the attrs."""
    import xarray as xr

    from .experiment.train import TrainResult

    if not isinstance(result, TrainResult):
        raise TypeError(f"`result` must be a widenet TrainResult; got {type(result).__name__}")
    sweep = np.ndim(result.diverged_at) == 1
    lead = ("run",) if sweep else ()
    data = {}
    for name in ("t", "train_loss", "weighted_loss", "l2", "test_loss", "train_accuracy", "test_accuracy",
                 "param_norm", "ntk_top", "hessian_top", "f_train", "f_test"):  # fmt: skip
        value = getattr(result, name)
        if value is None:
            continue
        dims = lead + ("record",) + _RECORD_DIMS.get(name, ())
        data[name] = (dims, np.asarray(value), {"units": _UNITS[name]})
    data["diverged_at"] = (lead, np.asarray(result.diverged_at), {"units": _UNITS["diverged_at"]})
    if result.step_loss is not None:  # every update, on its own dimension (the records are a subset of steps)
        data["step_loss"] = (lead + ("update",), np.asarray(result.step_loss), {"units": _UNITS["step_loss"]})
    for name, value in result.extra.items():
        value = np.asarray(value)
        dims = lead + ("record",) + tuple(f"{name}_{i}" for i in range(value.ndim - len(lead) - 1))
        data[f"extra_{name}"] = (dims, value, {"units": f"caller's observable {name!r}"})
    leaves = jax.tree.leaves(result.final_params) if result.final_params is not None else []
    for i, leaf in enumerate(leaves):
        leaf = np.asarray(leaf)
        dims = lead + tuple(f"param_{i}_{j}" for j in range(leaf.ndim - len(lead)))
        data[f"param_{i}"] = (dims, leaf, {"units": "final parameter leaf (jax.tree.leaves order)"})
    coords = {"step": ("record", np.asarray(result.steps))}
    if sweep:
        coords["run"] = np.arange(np.shape(result.diverged_at)[0])
    attrs = {"kind": "widenet.TrainResult", "config": _config_attr(config), "n_param_leaves": len(leaves),
             "extra": json.dumps(sorted(result.extra))}  # fmt: skip
    return xr.Dataset(data, coords=coords, attrs=attrs)


def from_solution(solution, *, config=None):
    """A theory `FunctionSpaceSolution` as an `xarray.Dataset` on its time grid."""
    import xarray as xr

    from .theory.solution import FunctionSpaceSolution

    if not isinstance(solution, FunctionSpaceSolution):
        raise TypeError(f"`solution` must be a widenet FunctionSpaceSolution; got {type(solution).__name__}")
    data = {"f_train": (("time", "train_sample", "output"), np.asarray(solution.f_train), {"units": _UNITS["f_train"]})}
    if solution.f_test is not None:
        data["f_test"] = (("time", "test_sample", "output"), np.asarray(solution.f_test), {"units": _UNITS["f_test"]})
    data["success"] = ((), np.asarray(solution.success, dtype=bool))
    attrs = {"kind": "widenet.FunctionSpaceSolution", "config": _config_attr(config)}
    coords = {"time": ("time", np.asarray(solution.ts), {"units": _UNITS["t"]})}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def train_result(dataset, *, params_like=None):
    """The `TrainResult` stored in `dataset` (from `from_train` or `load`); final parameters as the
    pytree of `params_like` (with the run axis for a sweep), else as the list of leaves."""
    from .experiment.train import TrainResult

    _expect(dataset, "widenet.TrainResult")
    get = lambda name: dataset[name].values if name in dataset else None  # noqa: E731
    sweep = "run" in dataset.dims
    lead = (dataset.sizes["run"],) if sweep else ()
    n_records = dataset.sizes["record"]

    def empty():
        return np.zeros(lead + (n_records, 0))

    leaves = [dataset[f"param_{i}"].values for i in range(int(dataset.attrs["n_param_leaves"]))]
    params = leaves if params_like is None else jax.tree.unflatten(jax.tree.structure(params_like), leaves)
    extra = {name: dataset[f"extra_{name}"].values for name in json.loads(dataset.attrs["extra"])}
    return TrainResult(
        steps=dataset["step"].values,
        t=get("t"), train_loss=get("train_loss"), weighted_loss=get("weighted_loss"), l2=get("l2"),
        test_loss=get("test_loss"), train_accuracy=get("train_accuracy"), test_accuracy=get("test_accuracy"),
        param_norm=get("param_norm"),
        ntk_top=get("ntk_top") if "ntk_top" in dataset else empty(),
        hessian_top=get("hessian_top") if "hessian_top" in dataset else empty(),
        f_train=get("f_train"), f_test=get("f_test"), diverged_at=get("diverged_at"), step_loss=get("step_loss"),
        extra=extra, final_params=params,
    )  # fmt: skip


def solution(dataset):
    """The `FunctionSpaceSolution` stored in `dataset` (from `from_solution` or `load`)."""
    from .theory.solution import FunctionSpaceSolution

    _expect(dataset, "widenet.FunctionSpaceSolution")
    f_test = dataset["f_test"].values if "f_test" in dataset else None
    return FunctionSpaceSolution(
        ts=dataset["time"].values, f_train=dataset["f_train"].values, f_test=f_test,
        success=bool(dataset["success"].values),
    )  # fmt: skip


def _expect(dataset, kind):
    found = getattr(dataset, "attrs", {}).get("kind")
    if found != kind:
        raise ValueError(f"`dataset` must hold a {kind} (attrs['kind']); got {found!r}")


def save(dataset, path):
    """Write `dataset` to netCDF-4 at `path` (h5netcdf), atomically; returns the path."""
    import os
    import tempfile

    import xarray as xr

    if not isinstance(dataset, xr.Dataset):
        raise TypeError(
            f"`dataset` must be an xarray.Dataset (from `from_train` or `from_solution`); got {type(dataset).__name__}"
        )
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".nc")
    os.close(fd)
    try:
        dataset.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path):
    """Read a Dataset written by `save` (fully into memory; the file is closed)."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` {path} does not exist")
    return xr.load_dataset(path, engine="h5netcdf")
