"""The only importer of `neural_tangents` in widenet, and its compatibility layer for jax 0.5.3 – 0.12.

neural-tangents 0.6.5 (its last release, 2024) was written against jax 0.4.x. On newer jax it
fails at import or inside `empirical_ntk_fn(implementation=3)`. This module makes the installed
release work on every jax from 0.5.3 to 0.12 *without editing any installed file*:

- every shim is guarded by a **probe for the missing symbol** (never by a version number), and is
  applied only where the probe finds it missing; no existing attribute is ever overwritten;
- symbols that neural-tangents needs only **while it is imported** (`from jax.core import Jaxpr`,
  `from jax.util import safe_map`, `ad.zeros_like_p` as a dictionary key) are added to jax's
  namespaces for the import alone and removed again afterwards, so user code never sees them;
- symbols neural-tangents looks up **at run time** are served by stand-ins installed on
  neural-tangents' *own* module references (`neural_tangents._src.empirical.ad` and `.core`), not
  on jax's modules; one class attribute (`Primitive.map_primitive`) is the exception, see below;
- neural-tangents' private helpers that call deprecated jax APIs are replaced, on its module, by
  new code written from their contract (nothing of neural-tangents is copied).

`SHIMS` lists every shim with the neural-tangents module that needs it and the jax change it
answers; `APPLIED` names the ones applied in this process; `widenet.show_versions()` prints both.

A self-check guards the fastest empirical NTK: the first `empirical_ntk_fn(..., implementation=3)`
in a process is compared with an explicit Jacobian contraction on a tiny network; if they disagree
beyond 1e-10 relative (float64; 1e-4 in float32), widenet warns once and uses implementation 1
(plain Jacobian contraction) from then on.
"""

import contextlib
import functools
import inspect
import sys
import threading
import types
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import ad as _jax_ad

__all__ = [
    "nt",
    "stax",
    "empirical_ntk_fn",
    "linearize",
    "taylor_expand",
    "predict",
    "SHIMS",
    "APPLIED",
    "structured_ntk_status",
]


@dataclass(frozen=True)
class Shim:
    """One compatibility shim: what it provides, which neural-tangents module needs it, and why."""

    name: str
    nt_module: str
    jax_change: str
    scope: str  # "import" (added for neural-tangents' import, then removed) or "runtime"


SHIMS = (
    Shim(
        "neural_tangents.experimental stub",
        "neural_tangents/__init__",
        "not a jax change: `experimental` imports tensorflow, which widenet never needs",
        "runtime",
    ),
    Shim(
        "jax.core.{Jaxpr, JaxprEqn, Literal, Var, Primitive}",
        "_src/empirical, _src/utils/rules",
        "moved to jax.extend.core and removed from jax.core in jax 0.6",
        "import",
    ),
    Shim(
        "jax.util.safe_map / safe_zip",
        "_src/empirical",
        "removed from jax.util in 0.7; the module jax.util is gone from 0.8",
        "import",
    ),
    Shim(
        "ad.zeros_like_p placeholder primitive",
        "_src/utils/rules",
        "removed from jax.interpreters.ad in jax 0.9 (used only as a rules-table key)",
        "import",
    ),
    Shim(
        "core.DShapedArray placeholder class",
        "_src/empirical (implementation 3)",
        "dynamic shapes removed in jax 0.8 (`type(a) is core.DShapedArray` is then never true)",
        "runtime",
    ),
    Shim(
        "Primitive.map_primitive = False",
        "_src/empirical (implementation 3)",
        "the class attribute was removed with pmap's map primitives (jax 0.8)",
        "runtime",
    ),
    Shim(
        "ad.source_info_util, ad.config",
        "_src/empirical (implementation 3)",
        "no longer re-exported from jax.interpreters.ad (jax 0.4.3x)",
        "runtime",
    ),
    Shim(
        "ad.reducing_transposes",
        "_src/empirical (implementation 3)",
        "no longer re-exported from jax.interpreters.ad in jax 0.10 (jax's own dict is used)",
        "runtime",
    ),
    Shim(
        "ad.linearize(fun, *primals)",
        "_src/empirical (implementation 3)",
        "signature changed to linearize(fun, primals_ft, ...) in jax 0.10; rebuilt from the public "
        "jax.linearize + jax.make_jaxpr",
        "runtime",
    ),
    Shim(
        "_get_fx_axis_and_dtype, _std_basis, _unravel_array_into_pytree",
        "_src/empirical",
        "jnp.dtype(Array) and jnp.size(ShapeDtypeStruct) deprecated, announced as future errors",
        "runtime",
    ),
)

APPLIED: list[str] = []


# ---------------------------------------------------------------------------------------------
# Import-time shims: present while neural-tangents is imported, removed afterwards.


@contextlib.contextmanager
def _temporarily(obj, name, value):
    """Set `obj.name = value` for the block if (and only if) `obj` has no such attribute."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a deprecated alias still counts as present
        present = hasattr(obj, name)
    if present or value is None:
        yield False
        return
    setattr(obj, name, value)
    try:
        yield True
    finally:
        delattr(obj, name)


@contextlib.contextmanager
def _temporary_module(name, module):
    """Register `module` in `sys.modules` under `name` for the block if that import fails."""
    try:
        __import__(name)
        yield False
        return
    except ImportError:
        pass
    sys.modules[name] = module
    try:
        yield True
    finally:
        sys.modules.pop(name, None)


def _equal_lengths(name, args):
    args = [list(a) for a in args]
    if any(len(a) != len(args[0]) for a in args):
        raise ValueError(f"{name}: length mismatch {[len(a) for a in args]}")
    return args


def _safe_map(f, *args):
    """`map` that insists the sequences have equal length (jax.util.safe_map's contract)."""
    return list(map(f, *_equal_lengths("safe_map", args)))


def _safe_zip(*args):
    """`zip` that insists the sequences have equal length (jax.util.safe_zip's contract)."""
    return list(zip(*_equal_lengths("safe_zip", args)))


def _import_neural_tangents():
    import jax.core as jcore
    import jax.extend.core as ecore

    util_stub = types.ModuleType("jax.util")
    util_stub.safe_map, util_stub.safe_zip = _safe_map, _safe_zip
    with contextlib.ExitStack() as stack:
        for name in ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive"):
            if stack.enter_context(_temporarily(jcore, name, getattr(ecore, name, None))):
                _note("jax.core.{Jaxpr, JaxprEqn, Literal, Var, Primitive}")
        util_module = sys.modules.get("jax.util")
        if util_module is None:
            if stack.enter_context(_temporary_module("jax.util", util_stub)):
                _note("jax.util.safe_map / safe_zip")
        else:
            for name, fn in (("safe_map", _safe_map), ("safe_zip", _safe_zip)):
                if stack.enter_context(_temporarily(util_module, name, fn)):
                    _note("jax.util.safe_map / safe_zip")
        if stack.enter_context(_temporarily(_jax_ad, "zeros_like_p", ecore.Primitive("zeros_like"))):
            _note("ad.zeros_like_p placeholder primitive")
        import neural_tangents
        import neural_tangents._src.empirical
        import neural_tangents._src.utils.rules  # noqa: F401 - imported while the shims stand
    return neural_tangents


def _note(name):
    if name not in APPLIED:
        APPLIED.append(name)


# ---------------------------------------------------------------------------------------------
# Run-time shims on neural-tangents' own module references.


class _DShapedArrayPlaceholder:
    """Stands in for `jax.core.DShapedArray` (removed in jax 0.8): no value is ever of this type."""


def _linearize_positional(fun, *primals, has_aux=False):
    """`ad.linearize(fun, *primals)` with its jax <= 0.9 contract, from public jax APIs.

    Returns `(primals_out, pvals, jaxpr, consts)`: the flat primal outputs; one partial value per
    output whose `is_known()` is False (every output carries a tangent); the linear jaxpr mapping
    input tangents to output tangents; the values of its constvars.
    """
    if has_aux:
        raise NotImplementedError("widenet's linearize shim does not support has_aux")
    primals_out, f_jvp = jax.linearize(lambda *args: fun.call_wrapped(*args), *primals)
    closed = jax.make_jaxpr(f_jvp)(*primals)
    pvals = [_UnknownPartialValue() for _ in primals_out]
    return list(primals_out), pvals, closed.jaxpr, list(closed.consts)


class _UnknownPartialValue:
    def is_known(self):
        return False


def _runtime_ad_module():
    """A stand-in for `jax.interpreters.ad` as neural-tangents' empirical module sees it."""
    from jax._src import source_info_util

    proxy = types.ModuleType("widenet._nt.ad")
    proxy.__getattr__ = lambda name: getattr(_jax_ad, name)
    if not hasattr(_jax_ad, "source_info_util") or not hasattr(_jax_ad, "config"):
        proxy.source_info_util = getattr(_jax_ad, "source_info_util", source_info_util)
        proxy.config = getattr(_jax_ad, "config", jax.config)
        _note("ad.source_info_util, ad.config")
    if not hasattr(_jax_ad, "reducing_transposes"):
        from jax._src.interpreters import ad as _private_ad

        proxy.reducing_transposes = getattr(_private_ad, "reducing_transposes", {})
        _note("ad.reducing_transposes")
    params = list(inspect.signature(_jax_ad.linearize).parameters.values())
    if len(params) < 2 or params[1].kind is not inspect.Parameter.VAR_POSITIONAL:
        proxy.linearize = _linearize_positional
        _note("ad.linearize(fun, *primals)")
    return proxy


def _runtime_core_module():
    """A stand-in for `jax.core` as neural-tangents' empirical module sees it."""
    import jax.core as jcore
    import jax.extend.core as ecore

    proxy = types.ModuleType("widenet._nt.core")

    def lookup(name):
        try:
            return getattr(jcore, name)
        except AttributeError:
            return getattr(ecore, name)

    proxy.__getattr__ = lookup
    try:
        lookup("DShapedArray")
    except AttributeError:
        proxy.DShapedArray = _DShapedArrayPlaceholder
        _note("core.DShapedArray placeholder class")
    return proxy


def _deprecated(call):
    """True if `call()` raises or warns (a deprecation announced as a future error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            call()
        except Exception:  # noqa: BLE001 - any failure means the API is not usable as NT uses it
            return True
    return False


def _get_fx_axis_and_dtype(fx, fx_axis, params):
    """`fx_axis` (None for every leaf of `fx` when not given) and the common dtype of `params`."""
    if fx_axis is None:
        fx_axis = jax.tree.map(lambda _: None, fx)
    dtypes = [jnp.result_type(leaf) for leaf in jax.tree.leaves(params)]
    dtype = functools.reduce(jnp.promote_types, dtypes) if dtypes else None
    return fx_axis, dtype


def _unravel_array_into_pytree(pytree, axis, arr):
    """Split `arr` along `axis` into pieces shaped like the leaves of `pytree` (other axes kept)."""
    leaves, treedef = jax.tree.flatten(pytree)
    if arr.ndim > 0:
        axis %= arr.ndim
    shapes = [arr.shape[:axis] + tuple(np.shape(leaf)) + arr.shape[axis + 1 :] for leaf in leaves]
    sizes = [int(np.prod(np.shape(leaf), dtype=int)) for leaf in leaves]
    parts = jnp.split(arr, np.cumsum(sizes[:-1]), axis)
    return jax.tree.unflatten(treedef, [jnp.reshape(p, s) for p, s in zip(parts, shapes)])


def _std_basis(pytree):
    """The standard basis of the flattened `pytree`, as a pytree with a leading basis axis."""
    leaves = jax.tree.leaves(pytree)
    ndim = sum(int(np.prod(np.shape(leaf), dtype=int)) for leaf in leaves)
    dtype = jax.dtypes.result_type(*leaves)
    return _unravel_array_into_pytree(pytree, 1, jnp.eye(ndim, dtype=dtype))


def _install_runtime_shims(empirical):
    empirical.ad = _runtime_ad_module()
    empirical.core = _runtime_core_module()
    import jax.extend.core as ecore

    primitive = ecore.Primitive
    if not hasattr(primitive, "map_primitive"):
        # Read by NT as `eqn.primitive.map_primitive` on jax's own primitives, so it must be a class
        # attribute of jax's Primitive; False is what every primitive had before its removal.
        primitive.map_primitive = False
        _note("Primitive.map_primitive = False")
    if _deprecated(lambda: jnp.dtype(jnp.zeros(1))) or _deprecated(
        lambda: jnp.size(jax.ShapeDtypeStruct((1,), jnp.float32))
    ):
        empirical._get_fx_axis_and_dtype = _get_fx_axis_and_dtype
        empirical._std_basis = _std_basis
        empirical._unravel_array_into_pytree = _unravel_array_into_pytree
        _note("_get_fx_axis_and_dtype, _std_basis, _unravel_array_into_pytree")


if "neural_tangents.experimental" not in sys.modules:
    sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
    _note("neural_tangents.experimental stub")

try:
    nt = _import_neural_tangents()
    from neural_tangents import stax
except ImportError as err:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "widenet needs neural-tangents==0.6.5. Install it without its tensorflow dependencies: "
        "`pip install --no-deps neural-tangents==0.6.5` (see README)."
    ) from err

_install_runtime_shims(sys.modules["neural_tangents._src.empirical"])

linearize = nt.linearize
taylor_expand = nt.taylor_expand
predict = nt.predict


# ---------------------------------------------------------------------------------------------
# The structured-derivative NTK self-check.


@dataclass
class _SelfCheck:
    done: bool = False
    ok: bool = True
    relative_error: float = float("nan")
    reason: str = ""


_self_check = _SelfCheck()


def _reference_ntk(apply_fn, params, x1, x2):
    """$\\Theta^{cd}(x_1, x_2) = \\sum_p \\partial_p f_c(x_1) \\partial_p f_d(x_2)$ by `jax.jacrev`: (n1, n2, C, C)."""
    j1 = jax.tree.leaves(jax.jacrev(apply_fn)(params, x1))
    j2 = jax.tree.leaves(jax.jacrev(apply_fn)(params, x2))
    total = 0.0
    for a, b in zip(j1, j2):
        a = a.reshape(a.shape[0], a.shape[1], -1)
        b = b.reshape(b.shape[0], b.shape[1], -1)
        total = total + jnp.einsum("icp,jdp->ijcd", a, b)
    return total


def _run_self_check():
    """Compare implementation 3 with `_reference_ntk` on a tiny 2-layer ReLU network, once."""
    x64 = jax.config.jax_enable_x64
    tolerance = 1e-10 if x64 else 1e-4
    dtype = jnp.float64 if x64 else jnp.float32
    init_fn, apply_fn, _ = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(3))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    _, params = init_fn(k1, (-1, 5))
    params = jax.tree.map(lambda p: p.astype(dtype), params)
    x1 = jax.random.normal(k2, (4, 5), dtype)
    x2 = jax.random.normal(k3, (3, 5), dtype)
    try:
        # the question is whether the numbers agree, so third-party deprecation notices are no answer
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # jitted: one compile each, instead of one per primitive when run eagerly (9 s -> 1 s)
            structured_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0, implementation=3)
            structured = jax.jit(structured_fn)(x1, x2, params)
            reference = jax.jit(_reference_ntk, static_argnums=0)(apply_fn, params, x1, x2)
            err = float(jnp.max(jnp.abs(structured - reference)) / jnp.max(jnp.abs(reference)))
            _self_check.relative_error = err
            _self_check.ok = bool(err <= tolerance)
            if not _self_check.ok:
                _self_check.reason = f"relative error {err:.3g} > {tolerance:g}"
    except Exception as exc:  # noqa: BLE001 - any failure of implementation 3 falls back to 1
        _self_check.ok = False
        _self_check.reason = f"{type(exc).__name__}: {exc}"
    _self_check.done = True


def _warn_if_self_check_failed():
    if not _self_check.ok:
        warnings.warn(
            "widenet: neural-tangents' structured-derivative empirical NTK (implementation=3) disagrees "
            f"with an explicit Jacobian contraction on this jax ({jax.__version__}): {_self_check.reason}. "
            "widenet uses implementation=1 (Jacobian contraction; exact, slower) for the rest of this process.",
            RuntimeWarning,
            stacklevel=3,
        )


def structured_ntk_status():
    """`(checked, ok, relative_error, reason)` of the implementation-3 self-check in this process."""
    return _self_check.done, _self_check.ok, _self_check.relative_error, _self_check.reason


def empirical_ntk_fn(apply_fn, *, implementation=3, **kwargs):
    """`neural_tangents.empirical_ntk_fn`, with implementation 3 guarded by the self-check.

    Implementation 0 (automatic choice) is refused: it is broken in neural-tangents 0.6.5.
    """
    if implementation not in (1, 2, 3):
        raise ValueError(
            f"`implementation` must be 1 (Jacobian contraction), 2 (NTK-vector products) or 3 "
            f"(structured derivatives); got {implementation!r}"
        )
    if implementation == 3:
        if not _self_check.done:
            # jax's trace state is per thread: a fresh thread computes the check eagerly even when the
            # kernel function is being built inside the user's jit trace
            worker = threading.Thread(target=_run_self_check, name="widenet-ntk-self-check")
            worker.start()
            worker.join()
            _warn_if_self_check_failed()
        if not _self_check.ok:
            implementation = 1
    return nt.empirical_ntk_fn(apply_fn, implementation=implementation, **kwargs)
