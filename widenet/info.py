"""What widenet runs on: versions, devices, float64, and the neural-tangents shims in force."""

import platform
import sys
from importlib import metadata

import jax

from . import _nt

__all__ = ["versions", "show_versions"]

_PACKAGES = ("jax", "jaxlib", "neural-tangents", "numpy", "scipy", "diffrax", "equinox", "matfree")


def versions():
    """A dict of what `show_versions` prints: package versions, devices, x64, shims applied, self-check."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    checked, ok, err, reason = _nt.structured_ntk_status()
    return {
        "widenet": sys.modules["widenet"].__version__,
        "python": platform.python_version(),
        "packages": found,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "shims": list(_nt.APPLIED),
        "ntk_self_check": (
            "not run yet" if not checked else ("ok" if ok else f"FAILED ({reason}); using implementation 1")
        )
        + ("" if not checked else f", relative error {err:.1e}"),
    }


def show_versions(file=None):
    """Print versions, devices, whether float64 is on, and the neural-tangents shims applied."""
    info = versions()
    out = file or sys.stdout
    print(f"widenet {info['widenet']} on Python {info['python']}", file=out)
    for name, version in info["packages"].items():
        print(f"  {name:16s} {version}", file=out)
    print(f"  backend          {info['backend']}: {', '.join(info['devices'])}", file=out)
    print(f"  float64 (x64)    {'on' if info['x64'] else 'off'}", file=out)
    print(f"  NTK self-check   {info['ntk_self_check']}", file=out)
    print(f"  shims applied for neural-tangents 0.6.5 ({len(info['shims'])}):", file=out)
    for shim in _nt.SHIMS:
        if shim.name in info["shims"]:
            print(f"    - {shim.name}  [{shim.nt_module}; {shim.jax_change}]", file=out)
