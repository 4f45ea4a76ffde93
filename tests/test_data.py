import gzip
import pickle
import struct

import jax
import numpy as np
import pytest

from widenet import data, networks
from widenet.experiment.train import TrainConfig, train


def test_spiral_follows_the_papers_construction():
    x, labels = data.spiral_points(jax.random.PRNGKey(0), n_per_class=100, n_classes=3, noise=0.2)
    assert x.shape == (300, 2) and np.bincount(labels).tolist() == [100, 100, 100]
    # radius is linspace(0, 1) on each arm: noise acts on the angle only
    np.testing.assert_allclose(np.linalg.norm(x[:100], axis=1), np.linspace(0, 1, 100), atol=1e-12)
    again, _ = data.spiral_points(jax.random.PRNGKey(0), n_per_class=100)
    np.testing.assert_array_equal(x, again)
    other, _ = data.spiral_points(jax.random.PRNGKey(1), n_per_class=100)
    assert not np.allclose(x, other)
    noiseless, _ = data.spiral_points(jax.random.PRNGKey(0), n_per_class=5, n_classes=2, noise=0.0)
    np.testing.assert_allclose(noiseless[4], [np.sin(4 * np.pi), np.cos(4 * np.pi)], atol=1e-12)


def test_rank_k_targets():
    d = data.rank_k_regression(jax.random.PRNGKey(0), 50, n_test=7, d=100, task="rank2")
    x, y = d.x_train, d.y_train
    assert x.shape == (50, 100) and y.shape == (50, 1) and d.x_test.shape == (7, 100) and d.y_test.shape == (7, 1)
    np.testing.assert_allclose(y[:, 0], x[:, 0] * x[:, 1])
    np.testing.assert_allclose(d.y_test[:, 0], d.x_test[:, 0] * d.x_test[:, 1])
    assert not np.allclose(d.x_test, x[:7])  # further draws, not copies of the training points
    d4 = data.rank_k_regression(jax.random.PRNGKey(0), 10, task="rank4")
    x4, y4 = d4.x_train, d4.y_train
    a, b, c, d = x4[:, 0], x4[:, 1], x4[:, 2], x4[:, 3]
    np.testing.assert_allclose(y4[:, 0], a + a * b + a * b * c + a * b * c * d)
    with pytest.raises(ValueError, match="`task`"):
        data.rank_k_target(x, "rank3")


def test_gaussian_is_deterministic():
    a = data.gaussian(jax.random.PRNGKey(4), 20, 3, n_test=5, out_dim=2)
    b = data.gaussian(jax.random.PRNGKey(4), 20, 3, n_test=5, out_dim=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == (20, 3) and a.y_train.shape == (20, 2) and a.x_test.shape == (5, 3)
    # noiseless targets are one linear teacher on train and test points alike
    teacher, *_ = np.linalg.lstsq(a.x_train, a.y_train, rcond=None)
    np.testing.assert_allclose(a.x_test @ teacher, a.y_test, atol=1e-12)


def test_generated_data_train_directly():
    """The generators' Datasets go straight into the trainer (they used to be tuples)."""
    net = networks.mlp((16,))
    for d in (data.rank_k_regression(jax.random.PRNGKey(0), 8, n_test=4, d=5), data.gaussian(jax.random.PRNGKey(1), 8, 5, n_test=4)):
        res = train(net.apply_fn, net.init(jax.random.PRNGKey(2), 5), d, TrainConfig(steps=2, record_every=1), learning_rate=0.1)
        assert np.isfinite(res.test_loss).all() and res.test_loss.shape == (3,)


def test_digits_even_odd_split():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=100, n_test=50)
    assert d.x_train.shape == (100, 64) and d.y_train.shape == (100, 1)
    np.testing.assert_allclose(np.linalg.norm(d.x_train, axis=1), 8.0)
    np.testing.assert_array_equal(d.y_train[:, 0], np.where(d.labels_train % 2 == 0, 1.0, -1.0))
    assert not set(map(bytes, d.x_train)) & set(map(bytes, d.x_test))
    with pytest.raises(ValueError, match="`n_train` \\+ `n_test`"):
        data.digits(key=jax.random.PRNGKey(0), n_train=2000)


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())


def test_mnist_idx_reader_on_tiny_written_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    d = data.load_mnist(tmp_path, key=jax.random.PRNGKey(0), n_train=8, n_test=4, target="one_hot", normalize=None)
    assert d.x_train.shape == (8, 784) and d.y_train.shape == (8, 10)
    np.testing.assert_array_equal(d.y_train.argmax(1), d.labels_train)
    row = np.where((images.reshape(12, -1) == d.x_train[0]).all(axis=1))[0]
    assert row.size == 1 and labels[row[0]] == d.labels_train[0]


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic"):
        data.read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((3,), np.uint8), 0x08)
    raw = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(tmp_path / "short")


def test_cifar10_reader_on_tiny_written_batches(tmp_path):
    rng = np.random.default_rng(1)
    for i in (1, 2):
        batch = {b"data": rng.integers(0, 256, (5, 3072), dtype=np.uint8), b"labels": list(range(5))}
        with open(tmp_path / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch, fh)
    d = data.load_cifar10(tmp_path, key=jax.random.PRNGKey(0), n_train=6, n_test=4)
    assert d.x_train.shape == (6, 3072) and d.y_train.shape == (6, 10)  # CIFAR-10 has 10 classes
    with pytest.raises(FileNotFoundError):
        data.load_cifar10(tmp_path / "missing", key=jax.random.PRNGKey(0), n_train=1)


def test_cifar10_rows_are_height_width_channel_images(tmp_path):
    # the files store channel planes (1024 R, 1024 G, 1024 B); a cnn reads rows as (32, 32, 3) row-major
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    planes = image.transpose(2, 0, 1).reshape(1, 3072)  # the file layout, built independently of the reader
    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.repeat(planes, 2, axis=0), b"labels": [3, 3]}, fh)
    d = data.load_cifar10(tmp_path, key=jax.random.PRNGKey(0), n_train=2, normalize=None)
    np.testing.assert_array_equal(d.x_train[0].reshape(32, 32, 3), image)


def test_a_class_subset_is_relabelled_in_the_order_given():
    full = data.digits(key=jax.random.PRNGKey(0), n_train=1797, target="one_hot", normalize=None)
    sub = data.digits(key=jax.random.PRNGKey(0), n_train=300, n_test=100, target="one_hot", normalize=None,
                      classes=(7, 0, 3))  # fmt: skip
    counts = {c: int((full.labels_train == c).sum()) for c in (7, 0, 3)}
    assert sub.y_train.shape == (300, 3) and sub.name == "digits/one_hot/classes7-0-3"
    np.testing.assert_array_equal(sub.y_train.argmax(1), sub.labels_train)
    assert set(np.unique(np.concatenate([sub.labels_train, sub.labels_test]))) == {0, 1, 2}
    # each kept image is an image of the digit its new label names: found among the full set's images of it
    for new, old in enumerate((7, 0, 3)):
        of_old = {row.tobytes() for row in full.x_train[full.labels_train == old]}
        assert all(row.tobytes() in of_old for row in sub.x_train[sub.labels_train == new])
    with pytest.raises(ValueError, match="`n_train` \\+ `n_test` must be <= " + str(sum(counts.values()))):
        data.digits(key=jax.random.PRNGKey(0), n_train=sum(counts.values()) + 1, classes=(7, 0, 3))
    parity = data.digits(key=jax.random.PRNGKey(0), n_train=50, classes=(7, 0, 3), normalize=None)
    for row, y in zip(parity.x_train, parity.y_train[:, 0], strict=True):  # even_odd: the original digit's parity
        digit = int(full.labels_train[[r.tobytes() for r in full.x_train].index(row.tobytes())])
        assert y == (1.0 if digit % 2 == 0 else -1.0)
    for bad in ((3,), (1, 1), (0, 10), (0.5, 1.5)):
        with pytest.raises(ValueError, match="`classes`"):
            data.digits(key=jax.random.PRNGKey(0), n_train=5, classes=bad)


def test_spiral_dataset_has_one_hot_targets_and_an_independent_test_draw():
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=10, n_classes=3)
    assert d.x_train.shape == (30, 2) and d.y_train.shape == (30, 3) and d.x_test.shape == (30, 2)
    np.testing.assert_array_equal(d.y_train.argmax(1), d.labels_train)
    assert not np.allclose(d.x_train, d.x_test)


def test_spiral_with_one_count_per_class_is_class_imbalanced():
    x, labels = data.spiral_points(jax.random.PRNGKey(0), n_per_class=(60, 20, 5), n_classes=3)
    assert x.shape == (85, 2) and np.bincount(labels).tolist() == [60, 20, 5]
    # every arm still spans radius 0 to 1, with its own number of points
    np.testing.assert_allclose(np.linalg.norm(x[60:80], axis=1), np.linspace(0, 1, 20), atol=1e-12)
    balanced, _ = data.spiral_points(jax.random.PRNGKey(0), n_per_class=60, n_classes=3)
    np.testing.assert_array_equal(x[:60], balanced[:60])  # same key, same first arm
    with pytest.raises(ValueError, match="`n_per_class` must be an int or 3 counts"):
        data.spiral_points(jax.random.PRNGKey(0), n_per_class=(10, 10), n_classes=3)
    with pytest.raises(ValueError, match="`n_per_class` must lie in"):
        data.spiral_points(jax.random.PRNGKey(0), n_per_class=(10, 0, 10), n_classes=3)
