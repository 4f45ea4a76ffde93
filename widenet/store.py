"""A run store that cannot serve stale, foreign or corrupt results.

Each finished run is one `.npz` file, written atomically the moment the run ends, so an interrupted
sweep resumes without losing work. A run is identified by its **complete identity**:

- the caller's key (a readable name: ``"l2_digits_w512_..."``) and its configuration (every parameter
  that changes the numbers: a scenario passes its whole resolved size configuration);
- a **fingerprint of the code** that computes it: the source of the `widenet` package plus the caller's
  own source files (a scenario module), so runs made by older code are never reused after an upgrade;
- the versions of jax, jaxlib, neural-tangents and numpy.

The file name is a readable prefix of the key plus a hash of the identity, so keys that differ only
in punctuation (``"a/b"`` and ``"a_b"``) never share a file. Each file stores its identity and a
SHA-256 checksum of every array; `get` verifies both. A corrupt file (truncated, zeroed, bit-flipped),
a foreign file (another run's identity) or a stale one is reported by name through `log` and that run
alone is recomputed. Writes go to a temporary file in the same folder that is renamed into place, and
the temporary file is removed on every error (a full disk included); if the result cannot be stored,
`cached` still returns it and says why.

Values round-trip exactly: arrays (any numeric or bool dtype), Python scalars (bool, int, float,
complex, str) and None.
"""

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["RunStore", "code_fingerprint"]

_META = "__widenet_meta__"
_FORMAT = 2
_PACKAGE_DIR = Path(__file__).resolve().parent


def _versions():
    found = {}
    for name in ("jax", "jaxlib", "neural-tangents", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def code_fingerprint(sources: Iterable = ()):
    """SHA-256 over the `widenet` package's Python sources and the given extra files or modules."""
    paths = sorted(_PACKAGE_DIR.rglob("*.py"))
    for source in sources:
        path = Path(getattr(source, "__file__", source)).resolve()
        paths.append(path)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(value):
    """A JSON-able, order-independent form of a configuration (tuples as lists, arrays as lists)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"run configuration values must be numbers, strings, lists or dicts; got {type(value).__name__}")


def _checksum(array):
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(str((array.dtype.str, array.shape)).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _encode(values):
    """Split a result dict into arrays for np.savez and a description of how to restore each value."""
    arrays, kinds = {}, {}
    for name, value in values.items():
        if not isinstance(name, str) or not name or name == _META or name.startswith("__"):
            raise ValueError(f"result names must be non-empty strings not starting with '__'; got {name!r}")
        if value is None:
            kinds[name] = "none"
            continue
        if isinstance(value, (bool, int, float, complex, str)) and not isinstance(value, np.generic):
            kinds[name] = type(value).__name__
            arrays[name] = np.asarray(value)
            continue
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError(f"result {name!r} is an object array (ragged or mixed values); store arrays of numbers")
        kinds[name] = "array"
        arrays[name] = array
    return arrays, kinds


_SCALARS = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str}


def _decode(arrays, kinds):
    """The inverse of `_encode`: None, Python scalars and arrays as they were stored."""
    return {
        name: None if kind == "none" else _SCALARS[kind](arrays[name][()]) if kind in _SCALARS else arrays[name]
        for name, kind in kinds.items()
    }


class RunStore:
    """Finished runs on disk, verified on every read.

    Args:
        root: the folder (created if missing).
        code: extra source files or modules whose text is part of every run's identity (the
            `widenet` package is always included).
        context: configuration shared by every run of this store (a scenario's name, size and its
            whole resolved configuration), part of every run's identity.
        log: called with one line whenever a stored file is rejected or a result cannot be stored.
    """

    def __init__(self, root, *, code: Iterable = (), context=None, log: Callable[[str], None] = print):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"cannot create the run store folder {self.root}: {err.strerror or err}") from err
        self.fingerprint = code_fingerprint(code)
        self.versions = _versions()
        self.context = _canonical(context)
        self.log = log

    def identity(self, key, config=None):
        """The complete identity of run `key`: key, configuration, context, code fingerprint, versions."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"`key` must be a non-empty string; got {key!r}")
        return {
            "format": _FORMAT,
            "key": key,
            "config": _canonical(config),
            "context": self.context,
            "code": self.fingerprint,
            "versions": self.versions,
        }

    def path(self, key, config=None):
        """The file that holds run `key` under this store's code, context and `config`."""
        identity = self.identity(key, config)
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
        readable = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in key)[:80]
        return self.root / f"{readable}-{digest}.npz"

    def get(self, key, config=None):
        """The stored values of run `key`, or None (missing, or rejected and reported by name)."""
        path = self.path(key, config)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
                meta = json.loads(str(npz[_META][()]))
                arrays = {name: npz[name] for name in npz.files if name != _META}
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported and recomputed
            self.log(f"run store: {path} is unreadable ({type(err).__name__}: {err}); recomputing this run")
            return None
        if meta.get("identity") != self.identity(key, config):
            self.log(f"run store: {path} belongs to another run or code version; recomputing this run")
            return None
        checksums, kinds = meta.get("checksums", {}), meta.get("kinds", {})
        if set(checksums) != set(arrays) or any(_checksum(arrays[n]) != checksums[n] for n in arrays):
            self.log(f"run store: {path} fails its checksum (corrupt); recomputing this run")
            return None
        return _decode(arrays, kinds)

    def put(self, key, values, config=None):
        """Write run `key` atomically; on any error no file (temporary or partial) is left behind."""
        return self._write(key, *_encode(values), config)

    def _write(self, key, arrays, kinds, config):
        path = self.path(key, config)
        meta = {
            "identity": self.identity(key, config),
            "kinds": kinds,
            "checksums": {name: _checksum(a) for name, a in arrays.items()},
        }
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".partial-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays, **{_META: np.asarray(json.dumps(meta))})
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(err, OSError):
                raise OSError(err.errno, f"cannot write run {key!r} to {path}: {err.strerror or err}") from err
            raise
        return path

    def cached(self, key, compute: Callable[[], dict], config=None):
        """The stored run `key`, or `compute()` stored at once and returned.

        If the result cannot be stored (a full disk, a read-only folder) it is still returned, and
        `log` says so: the computation is never lost to a failed write.
        """
        found = self.get(key, config)
        if found is not None:
            return found
        arrays, kinds = _encode(dict(compute()))
        try:
            self._write(key, arrays, kinds, config)
        except OSError as err:
            self.log(f"run store: {err}; the result is used but not stored")
        return _decode(arrays, kinds)  # exactly what a resumed run will read back
