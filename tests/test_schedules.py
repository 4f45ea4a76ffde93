import jax
import numpy as np
import pytest

from tests.helpers import autol2_reference
from widenet import schedules


def test_schedules_are_jittable_functions_of_step():
    pc = jax.jit(schedules.piecewise_constant([10, 20], [1.0, 0.1, 0.01]))
    np.testing.assert_allclose([pc(0), pc(9), pc(10), pc(25)], [1.0, 1.0, 0.1, 0.01])
    ed = schedules.exponential_decay(2.0, rate=0.5, every=10)
    np.testing.assert_allclose([ed(0), ed(10), ed(25)], [2.0, 1.0, 0.5])
    np.testing.assert_allclose(schedules.l2_budget(200.0, c=0.0066)(123), 0.0066 / 200)
    assert float(schedules.constant(3.0)(7)) == 3.0


def test_schedule_errors():
    with pytest.raises(ValueError, match="`values` must have"):
        schedules.piecewise_constant([1], [1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        schedules.piecewise_constant([5, 5], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="`time_budget`"):
        schedules.l2_budget(0.0, c=0.1)


def test_autol2_rule_follows_algorithm_1():
    rng = np.random.default_rng(0)
    steps = np.arange(400)
    loss = np.exp(-steps / 60) + 0.05 * np.sin(steps / 7) ** 2 + 0.01 * rng.random(400)
    error = np.round(0.5 * np.exp(-steps / 90) + 0.02 * rng.random(400), 2)
    rule = schedules.auto_l2(1.0, factor=10.0, refractory=2.0, measure_every=5)
    update = jax.jit(rule.update)
    state, got = rule.init(), []
    for i, (lo, er) in enumerate(zip(loss, error)):
        state = update(state, 5 * i, lo, er)
        got.append(float(state.l2))
    expected = autol2_reference(zip(loss, error), initial=1.0, factor=10.0, refractory=2.0, every=5)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    decays = np.nonzero(np.diff(np.log10(expected)))[0]
    assert len(decays) >= 2  # the sequence exercises decays and the refractory period
    # the refractory period 2/λ (in steps) separates consecutive decays
    for a, b in zip(decays, decays[1:]):
        assert 5 * (b - a) >= 2.0 / expected[a + 1]


def test_autol2_bad_input():
    with pytest.raises(ValueError, match="`initial` must lie in"):
        schedules.auto_l2(0.0)
    with pytest.raises(ValueError, match="`factor` must lie in"):
        schedules.auto_l2(0.1, factor=1.0)
    with pytest.raises(ValueError, match="`measure_every` must lie in"):
        schedules.auto_l2(0.1, measure_every=0)
