"""Pieces shared by the L2 scenarios: a seeds-by-width training run on digits, stored at once."""

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness
from widenet.experiment.train import TrainConfig, train_sweep


def digits_problems(network, *, n_train, n_test, seeds, data_seed=0):
    """The digits even/odd data and one `Problem` per seed (its own init, f0 and empirical NTK)."""
    d = data.digits(key=jax.random.PRNGKey(data_seed), n_train=n_train, n_test=n_test)
    keys = jax.random.split(jax.random.PRNGKey(1000 + data_seed), seeds)
    return d, [harness.build_problem(d, network, key=key, analytic=False) for key in keys]


def train_problems(
    ctx, key, network, d, problems, *, learning_rate, l2, steps, records=100, n_eigs=0, loss="mse", outputs=False
):
    """Train every problem's network (vmapped over seeds, or over `l2` if it is an array) on `loss`;
    the finished sweep is written to the run store at once and read back on a resumed run.
    `outputs`: also keep the training-set outputs at every record (`f_train`)."""

    def compute():
        params = jax.tree.map(lambda *p: jnp.stack(p), *[p.params0 for p in problems])
        config = TrainConfig(steps=steps, record_every=max(1, steps // records), n_eigs=n_eigs, record_outputs=outputs, loss=loss,
                             ntk_implementation=network.ntk_implementation)  # fmt: skip
        res = train_sweep(
            network.apply_fn, params, d, config, learning_rate=jnp.full(len(problems), learning_rate),
            l2=jnp.broadcast_to(jnp.asarray(l2, dtype=float), (len(problems),)), progress=True,
        )  # fmt: skip
        extra = {"f_train": res.f_train} if outputs else {}
        return extra | {
            "steps": res.steps, "t": res.t, "train_loss": res.train_loss, "test_loss": res.test_loss,
            "ntk_top": res.ntk_top, "diverged_at": res.diverged_at, "test_accuracy": res.test_accuracy,
        }  # fmt: skip

    return ctx.store.cached(key, compute)


def stable_learning_rate(problems, fraction=0.5):
    """η = fraction/γ_max, γ_max the largest empirical-NTK eigenvalue over the problems (GD is stable
    below 2/γ_max; 0.5/γ_max keeps the discretisation error of the gradient-flow theory small)."""
    gamma_max = max(float(np.linalg.eigvalsh(p.ntk_train)[-1]) for p in problems)
    return fraction / gamma_max


def relative_error(measured, predicted):
    return np.abs(np.asarray(measured) - np.asarray(predicted)) / np.abs(np.asarray(predicted))
