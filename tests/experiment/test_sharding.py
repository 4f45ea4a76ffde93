"""The run axis of a sweep sharded over several (simulated) devices gives the single-device numbers."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from widenet import data, networks
    from widenet.experiment.train import TrainConfig, train_sweep
    assert len(jax.devices()) == 8
    d = data.digits(key=jax.random.PRNGKey(0), n_train=32, n_test=8)
    net = networks.mlp((64,))
    runs = 5  # not a multiple of 2 or 8: the last device's share is padded
    keys = jax.random.split(jax.random.PRNGKey(1), runs)
    params = jax.tree.map(lambda *p: jnp.stack(p), *[net.init(k, 64) for k in keys])
    config = TrainConfig(steps=40, record_every=10, batch_size=8, n_eigs=2)
    kwargs = dict(learning_rate=jnp.linspace(0.01, 0.05, runs), l2=jnp.linspace(0.0, 0.1, runs),
                  key=jax.random.split(jax.random.PRNGKey(2), runs))
    results = {n: train_sweep(net.apply_fn, params, d, config, devices=jax.devices()[:n], **kwargs) for n in (1, 2, 8)}
    worst, bitwise = 0.0, True
    for n in (2, 8):
        for name in ("train_loss", "test_loss", "t", "l2", "ntk_top", "diverged_at"):
            a, b = np.asarray(getattr(results[1], name)), np.asarray(getattr(results[n], name))
            assert a.shape == b.shape, (name, a.shape, b.shape)
            bitwise &= np.array_equal(a, b)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300))))
        for a, b in zip(jax.tree.leaves(results[1].final_params), jax.tree.leaves(results[n].final_params)):
            bitwise &= np.array_equal(np.asarray(a), np.asarray(b))
            worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
    print("bitwise" if bitwise else f"max rel. difference {worst:.1e}")
    assert worst < 1e-12, worst
    """
)


def test_sweep_on_1_2_and_8_simulated_devices_gives_the_same_numbers():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    print(out.stdout)
