"""The comparison API: eq. 3 beside a user's own network at several widths and seeds."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from widenet import compare, data, networks, results

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_mean_interval_is_the_student_t_interval():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, low, high = compare.mean_interval(values)
    # t_{0.975, 3} = 3.182446305284263; s = 1.2909944487358056; s/sqrt(4) = 0.6454972243679028
    assert mean == 2.5 and high - mean == pytest.approx(3.182446305284263 * 0.6454972243679028, rel=1e-12)
    assert low == pytest.approx(2 * mean - high, rel=1e-15)
    assert compare.mean_interval(np.array([1.0]))[1] == -np.inf  # one seed bounds nothing


def test_l2_mse_compares_eq3_and_the_linear_model_on_each_runs_own_grid():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=12, n_test=6)
    comp = compare.l2_mse(lambda w: networks.mlp((w,)), d, widths=(16, 64), seeds=3, learning_rate=0.04, l2=0.2,
                          steps=60, records=6, key=jax.random.PRNGKey(1))  # fmt: skip
    assert comp.k == 2.0 and comp.t.shape == (2, 3, 7) and comp.measured["train"].shape == (2, 3, 7)
    np.testing.assert_allclose(comp.t[..., 0], 0.0)
    np.testing.assert_allclose(comp.theory["train"][..., 0], comp.measured["train"][..., 0], rtol=1e-12)  # same f0
    agreement = comp.agreement()
    assert set(agreement) == {16, 64}
    mean, low, high = agreement[64]["theory"]
    assert low <= mean <= high and mean < agreement[64]["linear"][0]
    ds = comp.to_xarray()
    assert ds["measured_train_loss"].dims == ("width", "seed", "record") and list(ds["width"].values) == [16, 64]


def test_a_non_homogeneous_network_is_refused():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=8, n_test=4)
    with pytest.raises(ValueError, match="not homogeneous"):
        compare.l2_mse(lambda w: networks.mlp((w,), b_std=0.1), d, widths=(8,), seeds=2, learning_rate=0.01,
                       l2=0.1, steps=5, key=jax.random.PRNGKey(0))  # fmt: skip


def test_the_compare_example_runs_saves_reloads_and_plots(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "compare_l2.py"), "--small", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "compare_l2.png").stat().st_size > 10_000
    ds = results.load(tmp_path / "compare_l2.nc")
    assert ds.sizes["width"] == 3 and ds.sizes["seed"] == 5 and ds.attrs["kind"] == "widenet.L2Comparison"
