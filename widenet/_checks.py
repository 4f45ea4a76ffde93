"""ValueError helpers for the public boundary. Checks run only on concrete values.

Under `jit`/`vmap` the arguments are tracers and cannot be inspected; checks are then skipped and
the caller is responsible (as in diffrax and optax).
"""

import warnings

import jax
import numpy as np
from jax import core


class PrecisionWarning(UserWarning):
    """A precision-critical computation runs in float32 (jax_enable_x64 is off)."""


_warned_float32 = set()


def warn_if_float32(entry, consequence):
    """Warn once per entry point, with its consequence, when float64 is off.

    widenet's policy: theory entry points whose documented accuracy needs float64 (closed forms, the
    function-space ODE, Floquet multipliers, the fixed point) warn once with what is lost, rather than
    raise: float32 is a legitimate choice for a quick look on an accelerator. The library never turns
    x64 on itself; entry points (`python -m validate`, tests) do.
    """
    if jax.config.jax_enable_x64 or entry in _warned_float32:
        return
    _warned_float32.add(entry)
    warnings.warn(
        f"widenet.{entry} runs in float32 because jax_enable_x64 is off: {consequence}. Put "
        "`jax.config.update('jax_enable_x64', True)` at the start of your script for float64.",
        PrecisionWarning,
        stacklevel=3,
    )


def concrete(x):
    """`x` as a NumPy array, or None when it is a tracer (inside jit/vmap/grad)."""
    try:
        if isinstance(x, core.Tracer):
            return None
        return np.asarray(x)
    except Exception:  # noqa: BLE001 - any failure to concretise means "not concrete"
        return None


def _describe(value):
    value = np.asarray(value)
    if value.size == 1:
        return f"{value.item()!r}"
    return f"array with min {value.min()!r} and max {value.max()!r}"


def check_real(name, x):
    """Raise TypeError unless `x` is a real number or an array of them (None, strings, complex fail)."""
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"`{name}` must be a real number; got {x!r}")
    value = concrete(x)
    if value is not None and value.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real number or an array of them; got {type(x).__name__} {x!r:.80}")
    return value


def check_range(name, x, *, low=None, high=None, low_open=False, high_open=False, meaning="", finite=True):
    """Raise ValueError unless low <= x <= high elementwise (open ends on request); NaN fails, and
    so do infinities unless `finite=False`. Raise TypeError if `x` is not a real number."""
    value = check_real(name, x)
    if value is None:
        return
    ok = ~np.isnan(value)
    if finite:
        ok &= np.isfinite(value)
    if low is not None:
        ok &= value > low if low_open else value >= low
    if high is not None:
        ok &= value < high if high_open else value <= high
    if not np.all(ok):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        allowed = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        what = f" ({meaning})" if meaning else ""
        raise ValueError(f"`{name}` must lie in {allowed}{what}; got {_describe(value)}")


def check_degree(name, k):
    """A degree of homogeneity the L2 paper's solution covers: k = 0 (scale-invariant) or k >= 1."""
    check_range(name, k, low=0.0, meaning="degree of homogeneity, k = 0 or k >= 1")
    value = concrete(k)
    if value is not None and np.any((value > 0.0) & (value < 1.0)):
        raise ValueError(
            f"`{name}` must be 0 (a scale-invariant network) or >= 1 (the degree of homogeneity); got {k}: "
            "0 < k < 1 is not a degree the L2 paper's solution covers"
        )


def check_int(name, x, *, low=None, high=None, meaning=""):
    """Raise TypeError unless `x` is an integer (not a bool or float), ValueError unless low <= x <= high."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {type(x).__name__} {x!r:.80}")
    check_range(name, int(x), low=low, high=high, meaning=meaning)
    return int(x)


def check_labels(name, labels, n_classes):
    """Raise ValueError unless `labels` are integers in [0, n_classes); returns them as an int array."""
    value = np.asarray(labels)
    if value.dtype.kind not in "iu" and not (value.dtype.kind == "f" and np.all(value == np.round(value))):
        raise TypeError(f"`{name}` must be integer class labels; got dtype {value.dtype}")
    if value.size and (value.min() < 0 or value.max() >= n_classes):
        raise ValueError(
            f"`{name}` must lie in [0, {n_classes - 1}] ({n_classes} classes); got min {value.min()} and max {value.max()}"
        )
    return value.astype(int)


def check_shape(name, x, expected, *, other=None):
    """Raise ValueError if `x.shape` differs from `expected` (None entries match anything)."""
    shape = np.shape(x)
    ok = len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))
    if not ok:
        pretty = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        against = f" to match {other}" if other else ""
        raise ValueError(f"`{name}` must have shape {pretty}{against}; got shape {shape}")


def check_psd_kernel(name, kernel, *, rtol=1e-8):
    """Raise ValueError unless `kernel` is a symmetric positive semi-definite square matrix."""
    value = check_real(name, kernel)
    if value is None:
        return
    if value.ndim != 2 or value.shape[0] != value.shape[1] or value.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty square (n, n) kernel matrix; got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"`{name}` must be finite; it has {np.sum(~np.isfinite(value))} NaN or infinite entries")
    scale = max(np.abs(value).max(), np.finfo(float).tiny)
    asym = np.abs(value - value.T).max()
    if asym > rtol * scale * 10:
        raise ValueError(f"`{name}` must be symmetric; max |K - K^T| = {asym:.3g} (scale {scale:.3g})")
    low = np.linalg.eigvalsh((value + value.T) / 2).min()
    if low < -rtol * scale * value.shape[0]:
        raise ValueError(
            f"`{name}` must be positive semi-definite (a tangent kernel); its smallest eigenvalue is {low:.3g}"
        )
