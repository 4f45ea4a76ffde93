import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import data, networks, observables


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


@dataclasses.dataclass
class _Scaled:
    """A callable object holding an array: unhashable (a dataclass with eq), so it cannot be a static
    argument of `jax.jit`; `agop` and `linearized_gd_params` run it op by op instead of failing."""

    scale: jax.Array

    def __call__(self, params, x):
        return self.scale * networks.mlp((8,)).apply_fn(params, x)


def test_an_unhashable_network_function_gives_the_same_agop_and_linear_model():
    fn = _Scaled(jnp.asarray(1.5))
    with pytest.raises(TypeError):
        hash(fn)
    wrapped = lambda p, x: fn(p, x)  # noqa: E731 - the same function, hashable: the compiled route
    x = jax.random.normal(jax.random.PRNGKey(0), (12, 3))
    params = networks.mlp((8,)).init(jax.random.PRNGKey(1), 3)
    np.testing.assert_allclose(observables.agop(fn, params, x), observables.agop(wrapped, params, x), rtol=1e-12)
    y = jnp.ones((12, 1))
    eager, _ = networks.linearized_gd_params(fn, params, x, y, learning_rate=0.01, steps=7)
    compiled, _ = networks.linearized_gd_params(wrapped, params, x, y, learning_rate=0.01, steps=7)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(compiled)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
