import jax
import numpy as np
import pytest

from widenet import schedules


def _by_definition(step, n_classes, period, amplitude):
    c = (step // period) % n_classes
    tau = step % period
    raw = np.ones(n_classes)
    raw[c] = 1 + (amplitude - 1) * (1 - abs(2 * tau / period - 1))
    return n_classes * raw / raw.sum()


def test_class_weights_follow_the_authors_definition():
    for step in (0, 1, 7, 10, 19, 25, 33, 59, 60):
        got = np.asarray(schedules.class_weights(step, n_classes=3, period=20, amplitude=70.0))
        np.testing.assert_allclose(got, _by_definition(step, 3, 20, 70.0), rtol=1e-14)
    mid = np.asarray(schedules.class_weights(10, n_classes=3, period=20, amplitude=70.0))
    np.testing.assert_allclose(mid, [2.9167, 0.0417, 0.0417], atol=5e-5)
    steps = np.arange(200)
    table = np.asarray(jax.jit(lambda s: schedules.class_weights(s, n_classes=3, period=20, amplitude=5.0))(steps))
    np.testing.assert_allclose(table.sum(axis=1), 3.0, rtol=1e-14)
    assert table.shape == (200, 3)


def test_variants_and_switch_off():
    sine = np.asarray(schedules.class_weights(5, n_classes=2, period=20, amplitude=3.0, shape="sine"))
    raw = np.array([1 + 2 * np.sin(np.pi * 0.25) ** 2, 1.0])
    np.testing.assert_allclose(sine, 2 * raw / raw.sum(), rtol=1e-14)
    square = np.asarray(schedules.class_weights([2, 8], n_classes=2, period=20, amplitude=3.0, shape="square"))
    np.testing.assert_allclose(square[0], [1.0, 1.0])
    np.testing.assert_allclose(square[1], [1.5, 0.5])
    off = np.asarray(schedules.class_weights([50, 150], n_classes=3, period=20, amplitude=70.0, off_after=100))
    assert not np.allclose(off[0], 1.0) and np.allclose(off[1], 1.0)
    assert np.allclose(schedules.class_weights(7, n_classes=3, period=20, amplitude=1.0), 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(amplitude=0.5), "`amplitude`"),
        (dict(period=1), "`period`"),
        (dict(shape="saw"), "`shape`"),
        (dict(n_classes=1), "`n_classes`"),
    ],
)
def test_bad_class_weight_arguments(kwargs, match):
    args = dict(n_classes=3, period=20, amplitude=10.0) | kwargs
    with pytest.raises(ValueError, match=match):
        schedules.class_weights(0, **args)
