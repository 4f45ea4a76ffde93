import jax
import numpy as np
import pytest

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
