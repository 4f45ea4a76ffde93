"""The only importer of `neural_tangents` in widenet.

neural-tangents 0.6.5 (the last release) imports tensorflow and tf2jax at import time, only for
its TF-interop module `neural_tangents.experimental`, which widenet never uses. Pre-seeding
`sys.modules` with an empty stand-in skips tensorflow entirely (import in ~0.5 s instead of ~6 s,
and the 1.9 GB tensorflow wheels need not be installed: see README and pyproject.toml).

It also backports an upstream fix so that `empirical_ntk_fn(implementation=3)` (structured
derivatives, the fastest exact empirical NTK) works on jax 0.5.3: the module looks up
`jax.interpreters.ad.source_info_util` and `jax.interpreters.ad.config`, both removed from that
namespace in jax 0.4.3x. The backport only adds those two attributes back.
"""

import sys
import types

import jax
from jax._src import source_info_util as _source_info_util
from jax.interpreters import ad as _ad

if "neural_tangents.experimental" not in sys.modules:
    sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")

if not hasattr(_ad, "source_info_util"):
    _ad.source_info_util = _source_info_util
if not hasattr(_ad, "config"):
    _ad.config = jax.config

try:
    import neural_tangents as nt
    from neural_tangents import stax
except ImportError as err:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "widenet needs neural-tangents==0.6.5. Install it without its tensorflow dependencies: "
        "`pip install --no-deps neural-tangents==0.6.5 frozendict` (see README)."
    ) from err

empirical_ntk_fn = nt.empirical_ntk_fn
linearize = nt.linearize
taylor_expand = nt.taylor_expand
predict = nt.predict

__all__ = ["nt", "stax", "empirical_ntk_fn", "linearize", "taylor_expand", "predict"]
