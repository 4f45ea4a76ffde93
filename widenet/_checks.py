"""ValueError helpers for the public boundary. Checks run only on concrete values.

Under `jit`/`vmap` the arguments are tracers and cannot be inspected; checks are then skipped and
the caller is responsible (as in diffrax and optax).
"""

import numpy as np
from jax import core


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


def check_range(name, x, *, low=None, high=None, low_open=False, high_open=False, meaning=""):
    """Raise ValueError unless low <= x <= high elementwise (open ends on request); NaN fails."""
    value = concrete(x)
    if value is None:
        return
    ok = ~np.isnan(value)
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
    value = concrete(kernel)
    if value is None:
        return
    if value.ndim != 2 or value.shape[0] != value.shape[1]:
        raise ValueError(f"`{name}` must be a square (n, n) kernel matrix; got shape {value.shape}")
    scale = max(np.abs(value).max(), np.finfo(float).tiny)
    asym = np.abs(value - value.T).max()
    if asym > rtol * scale * 10:
        raise ValueError(f"`{name}` must be symmetric; max |K - K^T| = {asym:.3g} (scale {scale:.3g})")
    low = np.linalg.eigvalsh((value + value.T) / 2).min()
    if low < -rtol * scale * value.shape[0]:
        raise ValueError(
            f"`{name}` must be positive semi-definite (a tangent kernel); its smallest eigenvalue is {low:.3g}"
        )
