"""float64 policy: precision-critical theory entry points warn once, with the consequence, when x64 is off."""

import subprocess
import sys
import textwrap


def test_float32_warns_once_per_entry_point_and_the_ode_refuses_unreachable_tolerances():
    script = textwrap.dedent(
        """
        import warnings
        import jax, jax.numpy as jnp
        assert not jax.config.jax_enable_x64
        import widenet
        from widenet.theory import l2_homogeneous as l2h, ode, oscillatory
        kernel = jnp.array([[2.0, 0.5], [0.5, 1.0]])
        y = jnp.ones((2, 1))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            l2h.mse_solution(jnp.linspace(0, 1, 3), kernel, y, jnp.zeros((2, 1)), l2=0.1, k=2.0)
            l2h.mse_solution(jnp.linspace(0, 1, 3), kernel, y, jnp.zeros((2, 1)), l2=0.1, k=2.0)
            l2h.fixed_point(kernel, y, l2=0.1)
            oscillatory.floquet_radius(kernel, jnp.ones((3, 2)), learning_rate=0.1)
        messages = [str(w.message) for w in caught if issubclass(w.category, widenet.PrecisionWarning)]
        assert len(messages) == 3, messages  # once per entry point
        assert "mse_solution" in messages[0] and "1e-6 instead of 1e-10" in messages[0] and "jax_enable_x64" in messages[0]
        try:
            ode.function_space_ode(jnp.linspace(0, 1, 3), kernel, y, jnp.zeros((2, 1)), l2=0.1, k=2.0)
        except ValueError as err:
            assert "`rtol`=1e-12 is below float32's resolution" in str(err), err
        else:
            raise AssertionError("no error for an unreachable tolerance")
        sol = ode.function_space_ode(jnp.linspace(0, 1, 3), kernel, y, jnp.zeros((2, 1)), l2=0.1, k=2.0, rtol=1e-5, atol=1e-7)
        assert bool(sol.success)
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", script], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_no_precision_warning_in_float64(recwarn):
    import jax.numpy as jnp

    from widenet.theory import l2_homogeneous as l2h

    l2h.mse_solution(jnp.linspace(0, 1, 3), jnp.eye(2), jnp.ones((2, 1)), jnp.zeros((2, 1)), l2=0.1, k=2.0)
    assert not [w for w in recwarn if "float32" in str(w.message)]
