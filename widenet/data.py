"""Data sets: generated (spiral, rank-k regression, Gaussian), shipped (scikit-learn digits),
and readers for real MNIST (IDX) and CIFAR-10 (python batches) files on a local path.

Every generator takes an explicit PRNG key and is deterministic. Inputs are float arrays (n, d);
classification targets are one-hot (n, C) or, for two classes, a single ±1 column (n, 1). Every
data set comes as a `Dataset`, which `experiment.train` and `compare` take as it is."""

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from ._checks import check_int, check_labels, check_range

__all__ = [
    "Dataset",
    "spiral",
    "spiral_points",
    "rank_k_regression",
    "rank_k_target",
    "gaussian",
    "digits",
    "read_idx",
    "load_mnist",
    "load_cifar10",
    "one_hot",
    "split",
]


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays. `y_*` are regression targets or encoded labels, `labels_*` integer classes."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_train: np.ndarray | None = None
    labels_test: np.ndarray | None = None
    name: str = "data"

    @property
    def n_train(self):
        return self.x_train.shape[0]


def one_hot(labels, n_classes):
    """One-hot rows (n, C) of float targets; `labels` must be integers in [0, n_classes)."""
    n_classes = check_int("n_classes", n_classes, low=1)
    return np.eye(n_classes)[check_labels("labels", labels, n_classes)]


def spiral_points(key, *, n_per_class=100, n_classes=3, noise=0.2, turns=2.0):
    """Spiral arms (dynamical-loss paper, SM; NOTES.md): arm j has radius linspace(0, 1, n_j) and angle
    linspace(2πj/C, 2πj/C + 2π·turns, n_j) plus $\\mathcal N(0, \\text{noise}^2)$ on the angle only.

    Args:
        n_per_class: points per arm, an int (the paper: 100 each) or one count per class
            (class-imbalanced data, e.g. (60, 20, 20)).

    Returns:
        x (Σ n_j, 2) and integer labels (Σ n_j,).
    """
    check_range("n_classes", n_classes, low=2)
    sizes = np.full(n_classes, n_per_class) if np.ndim(n_per_class) == 0 else np.asarray(n_per_class, dtype=int)
    if sizes.shape != (n_classes,):
        raise ValueError(f"`n_per_class` must be an int or {n_classes} counts (one per class); got {n_per_class!r}")
    for size in sizes:
        check_range("n_per_class", int(size), low=1)
    check_range("noise", noise, low=0.0)
    angles_noise = noise * np.asarray(jax.random.normal(key, (n_classes, int(sizes.max()))))
    xs, labels = [], []
    for j, size in enumerate(sizes):
        r = np.linspace(0.0, 1.0, size)
        start = 2 * np.pi * j / n_classes
        angle = np.linspace(start, start + 2 * np.pi * turns, size) + angles_noise[j, :size]
        xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        labels.append(np.full(size, j))
    return np.concatenate(xs), np.concatenate(labels)


def spiral(key, *, n_per_class=100, n_classes=3, noise=0.2, turns=2.0):
    """The spiral task as a `Dataset` with one-hot targets (`spiral_points` for the construction).

    The test set is a second draw of the angle noise (`fold_in(key, 1)`). `n_per_class` may give one
    count per class (class-imbalanced data, e.g. (60, 20, 20))."""
    kwargs = dict(n_per_class=n_per_class, n_classes=n_classes, noise=noise, turns=turns)
    x, labels = spiral_points(key, **kwargs)
    xt, labels_t = spiral_points(jax.random.fold_in(key, 1), **kwargs)
    return Dataset(x, one_hot(labels, n_classes), xt, one_hot(labels_t, n_classes), labels, labels_t, "spiral")


def rank_k_target(x, task):
    """Targets of the low-rank regression tasks (catapult slides): rank2 $f^* = x_1 x_2$, rank4
    $f^* = x_1 + x_1x_2 + x_1x_2x_3 + x_1x_2x_3x_4$."""
    x = np.asarray(x)
    if task == "rank2":
        return x[:, 0] * x[:, 1]
    if task == "rank4":
        prod = np.cumprod(x[:, :4], axis=1)
        return prod.sum(axis=1)
    raise ValueError(f"`task` must be 'rank2' or 'rank4'; got {task!r}")


def _train_test(x, y, n_train, name):
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], name=name)


def rank_k_regression(key, n_train, *, n_test=0, d=100, task="rank2"):
    """Gaussian inputs $x \\sim \\mathcal N(0, I_d)$ with a low-rank polynomial target (`rank_k_target`).

    Returns:
        a `Dataset`: x (n_train, d), y (n_train, 1) and a test set of `n_test` further draws (the
        first n_train + n_test rows of one (n_train + n_test, d) draw from `key`).
    """
    check_int("n_train", n_train, low=1)
    check_int("n_test", n_test, low=0)
    check_int("d", d, low=4, meaning="the rank-4 target uses 4 coordinates")
    rank_k_target(np.zeros((1, 4)), task)  # the task's ValueError before any work
    x = np.asarray(jax.random.normal(key, (n_train + n_test, d)))
    return _train_test(x, rank_k_target(x, task)[:, None], n_train, task)


def gaussian(key, n_train, d, *, n_test=0, out_dim=1, noise=0.0):
    """Gaussian inputs with targets from a random linear teacher $y = x w/\\sqrt d$ plus noise.

    Returns:
        a `Dataset`: x (n_train, d), y (n_train, out_dim), and `n_test` further draws as its test set.
    """
    check_int("n_train", n_train, low=1)
    check_int("n_test", n_test, low=0)
    check_int("d", d, low=1)
    check_int("out_dim", out_dim, low=1)
    check_range("noise", noise, low=0.0)
    kx, kw, kn = jax.random.split(key, 3)
    n = n_train + n_test
    x = np.asarray(jax.random.normal(kx, (n, d)))
    w = np.asarray(jax.random.normal(kw, (d, out_dim))) / np.sqrt(d)
    y = x @ w + noise * np.asarray(jax.random.normal(kn, (n, out_dim)))
    return _train_test(x, y, n_train, "gaussian")


def _normalise(x, how):
    if how == "sphere":  # |x| = sqrt(d): O(1) coordinates, O(1) NTK entries in NTK parameterization
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError(
                f"`normalize`='sphere' cannot scale {int(np.sum(norms == 0))} all-zero input(s) (e.g. blank "
                "images) to the sphere; drop them or use normalize='standardize'"
            )
        return x * np.sqrt(x.shape[1]) / norms
    if how == "standardize":
        return (x - x.mean(0)) / (x.std(0) + 1e-8)
    if how is None:
        return x
    raise ValueError(f"`normalize` must be 'sphere', 'standardize' or None; got {how!r}")


def split(x, y, labels, *, key, n_train, n_test, name="data"):
    """Random disjoint train/test subsets (deterministic given `key`)."""
    n = x.shape[0]
    n_train = check_int("n_train", n_train, low=1)
    n_test = check_int("n_test", n_test, low=0)
    if len(y) != n or (labels is not None and len(labels) != n):
        raise ValueError(
            f"`x`, `y` and `labels` must have one row per sample; got {n}, {len(y)} and "
            f"{None if labels is None else len(labels)}"
        )
    if n_train + n_test > n:
        raise ValueError(f"`n_train` + `n_test` must be <= {n} samples; got {n_train} + {n_test}")
    order = np.asarray(jax.random.permutation(key, n))
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    lab = None if labels is None else np.asarray(labels)
    return Dataset(x[tr], y[tr], x[te], y[te], None if lab is None else lab[tr], None if lab is None else lab[te], name)


def _select(x, labels, classes, n_classes=10):
    """Keep the samples of `classes` (distinct labels in [0, n_classes)) and relabel them 0..C-1 in
    the order given; `classes=None` keeps everything. Returns (x, labels, C)."""
    if classes is None:
        return x, labels, n_classes
    given = np.atleast_1d(np.asarray(classes))
    if given.ndim != 1 or not np.issubdtype(given.dtype, np.integer):
        raise ValueError(f"`classes` must be a sequence of integer labels in [0, {n_classes - 1}]; got {classes!r}")
    classes = [int(c) for c in given]
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(0 <= c < n_classes for c in classes):
        raise ValueError(f"`classes` must be at least 2 distinct labels in [0, {n_classes - 1}]; got {tuple(classes)}")
    keep = np.isin(labels, classes)
    relabel = np.full(n_classes, -1)
    relabel[classes] = np.arange(len(classes))
    return x[keep], relabel[labels[keep]], len(classes)


def _encode(labels, target, n_classes=10):
    if target == "even_odd":
        return np.where(labels % 2 == 0, 1.0, -1.0)[:, None]
    if target == "one_hot":
        return one_hot(labels, n_classes)  # digits, MNIST, CIFAR-10: 10 classes, or those of `classes`
    raise ValueError(f"`target` must be 'even_odd' or 'one_hot'; got {target!r}")


def digits(*, key, n_train, n_test=0, target="even_odd", normalize="sphere", classes=None):
    """scikit-learn's 8x8 digits (1797 images, shipped with the package): an offline stand-in for MNIST.

    Args:
        key: PRNG key for the train/test split.
        n_train, n_test: subset sizes.
        target: "even_odd" (±1 single output, as the L2 paper's Fig. 5c) or "one_hot" (10 classes).
        normalize: "sphere" (each image has norm $\\sqrt d$), "standardize", or None (pixels 0..16).
        classes: optional digits to keep, e.g. (0, 1, 2) (the dynamical-loss paper's "first three
            classes"); they are relabelled 0..C-1 in this order and "one_hot" has C columns.
            "even_odd" keeps the parity of the original digit.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    return _labelled_split(data.data.astype(float), data.target.astype(int), key=key, n_train=n_train, n_test=n_test,
                           target=target, normalize=normalize, classes=classes, name=f"digits/{target}")  # fmt: skip


def _labelled_split(x, labels, *, key, n_train, n_test, target, normalize, classes, name):
    """Shared by the image readers: keep `classes`, encode `target`, normalise, split."""
    x, kept, n_classes = _select(x, labels, classes)
    if target == "even_odd":  # the parity of the original label
        y = _encode(labels if classes is None else labels[np.isin(labels, classes)], target)
    else:
        y = _encode(kept, target, n_classes)
    if classes is not None:
        name += "/classes" + "-".join(str(int(c)) for c in np.atleast_1d(classes))
    return split(_normalise(x, normalize), y, kept, key=key, n_train=n_train, n_test=n_test, name=name)


def read_idx(path):
    """Read an IDX file (MNIST's format), gzipped or not, into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot read ({type(err).__name__}: {err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    itemsize = np.dtype(dtypes[raw[2]]).itemsize
    body = len(raw) - 4 - 4 * ndim
    if body != int(np.prod(shape)) * itemsize:
        raise ValueError(f"{path}: header says shape {shape} but the file holds {body // itemsize} elements")
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    return data.reshape(shape)


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def load_mnist(directory, *, key, n_train, n_test=0, target="even_odd", normalize="sphere", classes=None):
    """MNIST from the four IDX files in a local `directory` (train-images-idx3-ubyte[.gz], ...).

    Rows are the 28×28 images flattened row-major (`networks.cnn(image_shape=(28, 28, 1))`).
    `target`, `normalize` and `classes` as `digits`."""
    directory = Path(directory)
    images_path = _find(directory, "train-images-idx3-ubyte")
    labels_path = _find(directory, "train-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: MNIST images must have shape (n, 28, 28); got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: MNIST labels must have shape (n,); got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST images ({images_path}: {images.shape[0]}) and labels ({labels_path}: {labels.shape[0]}) differ in number"
        )
    labels = check_labels(f"labels in {labels_path}", labels, 10)
    return _labelled_split(images.reshape(-1, 28 * 28).astype(float), labels, key=key, n_train=n_train,
                           n_test=n_test, target=target, normalize=normalize, classes=classes, name="mnist")  # fmt: skip


def load_cifar10(directory, *, key, n_train, n_test=0, target="one_hot", normalize="standardize", classes=None):
    """CIFAR-10 from the python batches (data_batch_1..5) in a local `directory` (cifar-10-batches-py).

    The files store each image channel-first (1024 red, then green, then blue values); rows here are
    the 32×32×3 images flattened height-width-channel (row-major), the layout of
    `networks.cnn(image_shape=(32, 32, 3))`. `target`, `normalize` and `classes` as `digits`
    (`classes=(0, 1, 2)`: the dynamical-loss paper's subset of the first three classes)."""
    directory = Path(directory)
    batches = [directory / f"data_batch_{i}" for i in range(1, 6) if (directory / f"data_batch_{i}").is_file()]
    if not batches:
        raise FileNotFoundError(f"no data_batch_1 .. data_batch_5 files in {directory}")
    xs, ys = [], []
    for batch in batches:
        try:
            with open(batch, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
        except Exception as err:  # noqa: BLE001 - any unreadable batch is reported by name
            raise ValueError(f"{batch}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from err
        if data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{batch}: CIFAR-10 rows must hold 3072 = 32x32x3 values; got data of shape {data.shape}")
        if labels.shape != (data.shape[0],):
            raise ValueError(f"{batch}: {data.shape[0]} images but labels of shape {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(-1, 3072).astype(float))  # CHW -> HWC
        ys.append(check_labels(f"labels in {batch}", labels, 10))
    return _labelled_split(np.concatenate(xs), np.concatenate(ys), key=key, n_train=n_train, n_test=n_test,
                           target=target, normalize=normalize, classes=classes, name="cifar10")  # fmt: skip
