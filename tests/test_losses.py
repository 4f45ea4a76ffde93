import numpy as np
import pytest

from widenet import losses


def test_mse_and_cross_entropy_values_and_weights():
    f = np.array([[0.5, -1.0], [2.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(losses.mse(f, y), 0.5 * np.sum((f - y) ** 2))
    w = np.array([2.0, 0.5])
    np.testing.assert_allclose(losses.mse(f, y, w), 0.5 * (2.0 * 1.25 + 0.5 * 5.0))
    logp = f - np.log(np.exp(f).sum(1, keepdims=True))
    np.testing.assert_allclose(losses.cross_entropy(f, y, w), -(2.0 * logp[0, 0] + 0.5 * logp[1, 1]))


def test_output_gradients_are_the_textbook_ones():
    f = np.array([[0.5, -1.0, 0.2], [2.0, 0.0, -0.3]])
    y = np.eye(3)[[2, 0]]
    np.testing.assert_allclose(losses.output_gradient("mse", f, y), f - y)
    softmax = np.exp(f) / np.exp(f).sum(1, keepdims=True)
    np.testing.assert_allclose(losses.output_gradient("cross_entropy", f, y), softmax - y, rtol=1e-12)


def test_accuracy_for_one_and_many_outputs():
    assert float(losses.accuracy(np.array([[0.3], [-2.0]]), np.array([[1.0], [1.0]]))) == 0.5
    assert float(losses.accuracy(np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 1, 1]])) == 2 / 3


def test_unknown_loss():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        losses.get("hinge")
