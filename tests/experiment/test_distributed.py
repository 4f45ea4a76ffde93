"""Sweeps shared over processes: each owns a block of runs and writes them to one store.

The two-process test runs the real thing: two Python processes under `jax.distributed.initialize`
with a coordinator on 127.0.0.1, each training its share and writing it to a shared folder; the
parent gathers the sweep and holds it to the single-process sweep.
"""

import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import data, networks, store
from widenet.experiment import distributed
from widenet.experiment.train import TrainConfig, train_sweep

RUNS = 16


def _sweep_inputs():
    d = data.digits(key=jax.random.PRNGKey(0), n_train=24, n_test=8)
    net = networks.mlp((16,))
    keys = jax.random.split(jax.random.PRNGKey(1), RUNS)
    params = jax.tree.map(lambda *p: jnp.stack(p), *[net.init(k, 64) for k in keys])
    config = TrainConfig(steps=30, record_every=10, batch_size=8)
    kwargs = dict(learning_rate=jnp.linspace(0.01, 0.05, RUNS), l2=jnp.linspace(0.0, 0.1, RUNS),
                  key=jax.random.split(jax.random.PRNGKey(2), RUNS))  # fmt: skip
    return net, params, d, config, kwargs


@pytest.fixture(scope="module")
def whole():
    """The reference: the 16 runs as one sweep in this process."""
    net, params, d, config, kwargs = _sweep_inputs()
    return train_sweep(net.apply_fn, params, d, config, **kwargs)


def test_process_shares_are_disjoint_contiguous_and_cover_every_run():
    for n_runs in (1, 5, 16, 17):
        for count in (1, 2, 3, 8):
            shares = [distributed.process_share(n_runs, process_index=i, process_count=count) for i in range(count)]
            assert [r for s in shares for r in s] == list(range(n_runs))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert distributed.process_share(7) == range(7)  # one process owns everything
    with pytest.raises(ValueError, match="process_index"):
        distributed.process_share(4, process_index=2, process_count=2)


def test_shares_written_by_hand_gather_to_the_single_sweep_and_resume(tmp_path, whole):
    net, params, d, config, kwargs = _sweep_inputs()
    runs = store.RunStore(tmp_path, log=lambda line: None)
    common = dict(store=runs, name="sweep", **kwargs)
    with pytest.raises(ValueError, match="runs are not in the store"):
        distributed.gather(runs, "sweep", RUNS, apply_fn=net.apply_fn, params=params, data=d, config=config, **kwargs)
    assert distributed.train_shared(
        net.apply_fn, params, d, config, process_index=1, process_count=2, **common
    ) == range(8, 16)
    assert len(list(tmp_path.glob("*.npz"))) == 8  # one file per run, only this share's
    distributed.train_shared(net.apply_fn, params, d, config, process_index=0, process_count=2, **common)
    gathered = distributed.gather(runs, "sweep", RUNS, apply_fn=net.apply_fn, params=params, data=d, config=config, **kwargs)
    for field in ("train_loss", "test_loss", "t", "l2", "param_norm", "diverged_at", "f_train", "f_test"):
        np.testing.assert_allclose(getattr(gathered, field), getattr(whole, field), rtol=1e-12, atol=1e-14)
    for a, b in zip(jax.tree.leaves(gathered.final_params), jax.tree.leaves(whole.final_params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # resuming trains nothing: every run is found (the files are untouched)
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.npz")}
    distributed.train_shared(net.apply_fn, params, d, config, **common)
    assert {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.npz")} == stamps
    # a changed input is another run: never served from the old file
    other = dict(kwargs, learning_rate=kwargs["learning_rate"] * 1.5)
    with pytest.raises(ValueError, match="16 of 16 runs"):
        distributed.gather(runs, "sweep", RUNS, apply_fn=net.apply_fn, params=params, data=d, config=config, **other)
    # ... and so is another network on the same parameters, or other sample weights
    gelu = networks.mlp((16,), activation="gelu")
    with pytest.raises(ValueError, match="16 of 16 runs"):
        distributed.gather(runs, "sweep", RUNS, apply_fn=gelu.apply_fn, params=params, data=d, config=config, **kwargs)
    with pytest.raises(ValueError, match="16 of 16 runs"):
        distributed.gather(runs, "sweep", RUNS, apply_fn=net.apply_fn, params=params, data=d, config=config,
                           sample_weights=np.linspace(0.5, 1.5, 24), **kwargs)  # fmt: skip
    # a function cannot be hashed: it must be named
    with pytest.raises(ValueError, match="`identity` must name"):
        distributed.train_shared(net.apply_fn, params, d, config, store=runs, name="sweep",
                                 **dict(kwargs, learning_rate=lambda step: 0.01))  # fmt: skip


WORKER = textwrap.dedent(
    """
    import sys
    import jax
    process, port, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process,
                               initialization_timeout=120)
    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, sys.argv[4])
    from tests.experiment.test_distributed import _sweep_inputs
    from widenet import store
    from widenet.experiment import distributed
    assert jax.process_count() == 2 and len(jax.local_devices()) == 1
    net, params, d, config, kwargs = _sweep_inputs()
    mine = distributed.train_shared(net.apply_fn, params, d, config, store=store.RunStore(folder), name="sweep",
                                    **kwargs)
    print("process", jax.process_index(), "trained runs", list(mine), flush=True)
    jax.distributed.shutdown()
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_localhost_processes_under_jax_distributed_give_the_single_process_numbers(tmp_path, whole):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), port, str(tmp_path), root],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "process 0 trained runs [0, 1, 2, 3, 4, 5, 6, 7]" in outs[0][0]
    assert "process 1 trained runs [8, 9, 10, 11, 12, 13, 14, 15]" in outs[1][0]
    net, params, d, config, kwargs = _sweep_inputs()
    gathered = distributed.gather(store.RunStore(tmp_path), "sweep", RUNS, apply_fn=net.apply_fn, params=params,
                                  data=d, config=config, **kwargs)  # fmt: skip
    for field in ("train_loss", "test_loss", "param_norm", "f_train"):
        np.testing.assert_allclose(getattr(gathered, field), getattr(whole, field), rtol=1e-12, atol=1e-14)
