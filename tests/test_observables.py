import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import data, observables


def test_agop_of_a_known_function_is_its_closed_form():
    x = jax.random.normal(jax.random.PRNGKey(0), (50, 6))
    f = lambda params, x: (x[:, 0] * x[:, 1])[:, None]  # noqa: E731
    g = np.asarray(observables.agop(f, None, x))
    want = np.zeros((6, 6))
    xs = np.asarray(x)
    want[0, 0], want[1, 1] = np.mean(xs[:, 1] ** 2), np.mean(xs[:, 0] ** 2)
    want[0, 1] = want[1, 0] = np.mean(xs[:, 0] * xs[:, 1])
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("task", ["rank2", "rank4"])
def test_empirical_agop_of_the_target_converges_to_the_true_agop(task):
    x = data.rank_k_regression(jax.random.PRNGKey(1), 40_000, d=10, task=task).x_train
    f = {
        "rank2": lambda p, x: (x[:, 0] * x[:, 1])[:, None],
        "rank4": lambda p, x: jnp.cumprod(x[:, :4], axis=1).sum(1)[:, None],
    }[task]
    g = observables.agop(f, None, x)
    g_star = observables.true_agop(task, 10)
    np.testing.assert_allclose(g, g_star, atol=0.1)
    assert float(observables.agop_alignment(g, g_star)) > 0.995


def test_alignment_is_a_cosine():
    a = jnp.diag(jnp.array([1.0, 0.0]))
    assert float(observables.agop_alignment(a, 3 * a)) == pytest.approx(1.0)
    assert float(observables.agop_alignment(a, jnp.diag(jnp.array([0.0, 1.0])))) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="`g_star` must have shape"):
        observables.agop_alignment(a, jnp.eye(3))
    with pytest.raises(ValueError, match="`task`"):
        observables.true_agop("rank3", 10)
