"""The run store: resumes finished runs, and never serves a stale, foreign or corrupt one."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from widenet.store import RunStore, code_fingerprint


class Counter:
    def __init__(self, value=None):
        self.calls = 0
        self.value = value if value is not None else {"loss": np.arange(5.0), "diverged_at": np.array([-1, 3])}

    def __call__(self):
        self.calls += 1
        return self.value


def _quiet_store(root, **kwargs):
    lines = []
    return RunStore(root, log=lines.append, **kwargs), lines


def test_a_finished_run_is_written_at_once_and_resumed_bitwise(tmp_path):
    compute = Counter()
    first = RunStore(tmp_path).cached("sweep/width=8", compute, config={"widths": (8, 16)})
    again = RunStore(tmp_path).cached("sweep/width=8", compute, config={"widths": [8, 16]})  # a resumed session
    assert compute.calls == 1
    for name in first:
        assert first[name].tobytes() == again[name].tobytes() and first[name].dtype == again[name].dtype
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []


def test_changed_configuration_is_recomputed_not_served_stale(tmp_path):
    compute = Counter()
    store, _ = _quiet_store(tmp_path)
    store.cached("l2_digits_w512", compute, config={"n_test": 128})
    store.cached("l2_digits_w512", compute, config={"n_test": 32})
    assert compute.calls == 2
    context_a, _ = _quiet_store(tmp_path, context={"factors": [1.0, 2.0]})
    context_b, _ = _quiet_store(tmp_path, context={"factors": [1.0, 3.0]})
    context_a.cached("catapult_multiple", compute)
    context_b.cached("catapult_multiple", compute)
    assert compute.calls == 4


def test_changed_code_is_recomputed(tmp_path):
    scenario = tmp_path / "scenario.py"
    scenario.write_text("X = 1\n")
    compute = Counter()
    RunStore(tmp_path / "runs", code=[scenario]).cached("run", compute)
    RunStore(tmp_path / "runs", code=[scenario]).cached("run", compute)
    assert compute.calls == 1
    scenario.write_text("X = 2\n")  # an upgraded scenario
    RunStore(tmp_path / "runs", code=[scenario]).cached("run", compute)
    assert compute.calls == 2
    assert code_fingerprint([scenario]) != code_fingerprint()


def test_keys_that_differ_in_punctuation_do_not_share_a_file(tmp_path):
    store, _ = _quiet_store(tmp_path)
    store.put("a/b", {"x": np.array(1.0)})
    store.put("a_b", {"x": np.array(2.0)})
    assert store.get("a/b")["x"] == 1.0 and store.get("a_b")["x"] == 2.0


def test_a_foreign_file_under_a_runs_name_is_rejected_by_name(tmp_path):
    store, lines = _quiet_store(tmp_path)
    other = store.put("other_sweep", {"x": np.arange(3.0)})
    os.replace(other, store.path("this_sweep"))
    compute = Counter()
    store.cached("this_sweep", compute)
    assert compute.calls == 1
    assert len(lines) == 1 and store.path("this_sweep").name in lines[0] and "another run" in lines[0]


@pytest.mark.parametrize("damage", ["truncate", "zero", "flip", "empty"])
def test_a_corrupt_file_is_reported_by_name_and_that_run_alone_recomputed(tmp_path, damage):
    store, lines = _quiet_store(tmp_path)
    keep = Counter({"x": np.arange(1000.0)})
    store.cached("kept", keep)
    path = store.put("damaged", {"x": np.arange(1000.0), "y": np.ones(7)})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "zero":
        data[200:600] = bytes(400)
    elif damage == "flip":
        data[len(data) // 3] ^= 0x10
    else:
        data = b""
    path.write_bytes(bytes(data))
    compute = Counter({"x": np.arange(1000.0), "y": np.ones(7)})
    got = store.cached("damaged", compute)
    assert compute.calls == 1 and np.array_equal(got["x"], np.arange(1000.0))
    assert len(lines) == 1 and path.name in lines[0]
    store.cached("kept", keep)
    assert keep.calls == 1  # the intact run is still served
    assert store.get("damaged") is not None  # and the recomputed one was stored again


def test_none_scalars_and_arrays_round_trip(tmp_path):
    store, _ = _quiet_store(tmp_path)
    values = {
        "none": None, "flag": True, "count": 3, "rate": 0.25, "z": 1 + 2j, "label": "k = 2",
        "ints": np.arange(4, dtype=np.int32), "bools": np.array([True, False]), "empty": np.zeros((0, 3)),
        "scalar_array": np.float64(2.5),
    }  # fmt: skip
    store.put("all kinds", values)
    got = store.get("all kinds")
    assert got["none"] is None and got["flag"] is True and got["count"] == 3 and isinstance(got["count"], int)
    assert got["rate"] == 0.25 and got["z"] == 1 + 2j and got["label"] == "k = 2"
    assert got["ints"].dtype == np.int32 and got["bools"].tolist() == [True, False] and got["empty"].shape == (0, 3)
    assert got["scalar_array"] == 2.5
    assert store.cached("all kinds", Counter())["none"] is None


def test_object_arrays_and_bad_names_are_refused(tmp_path):
    store, _ = _quiet_store(tmp_path)
    with pytest.raises(ValueError, match="object array"):
        store.put("ragged", {"x": np.array([np.zeros(2), np.zeros(3)], dtype=object)})
    with pytest.raises(ValueError, match="result names"):
        store.put("bad", {"__widenet_meta__": np.zeros(1)})
    with pytest.raises(ValueError, match="`key`"):
        store.put("", {"x": 1.0})
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_no_file_and_the_result_is_not_lost(tmp_path):
    """`ulimit -f` (RLIMIT_FSIZE) makes the write fail with EFBIG, as a full disk fails it with ENOSPC."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        import numpy as np
        from widenet.store import RunStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        lines = []
        store = RunStore({str(tmp_path)!r}, log=lines.append)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        got = store.cached("big", lambda: {{"x": np.arange(100_000.0)}})
        assert got["x"][-1] == 99_999.0, "the computed result is returned"
        assert len(lines) == 1 and "cannot write run 'big'" in lines[0] and "not stored" in lines[0], lines
        try:
            store.put("big", {{"x": np.arange(100_000.0)}})
        except OSError as err:
            assert "big" in str(err)
        else:
            raise AssertionError("put did not raise")
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert list(tmp_path.iterdir()) == []  # no temporary, no partial file


def test_an_unwritable_store_folder_gets_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot create the run store folder"):
        RunStore(blocker / "runs")


_WORKER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from widenet.store import RunStore
    store = RunStore(sys.argv[1], log=lambda line: None)
    for i in range(int(sys.argv[2])):
        def compute(i=i):
            time.sleep(float(sys.argv[3]))
            return {"x": np.full(1000, float(i)), "i": i}
        store.cached(f"run{i}", compute)
        print(i, flush=True)
    """
)


def test_kill_9_mid_sweep_then_resume_recomputes_only_the_missing_runs(tmp_path):
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path), "50", "0.05"], stdout=subprocess.PIPE, text=True
    )
    for _ in range(5):
        worker.stdout.readline()  # five runs finished
    worker.kill()
    worker.wait()
    worker.stdout.close()
    store, lines = _quiet_store(tmp_path)
    stored = {i for i in range(50) if store.get(f"run{i}") is not None}
    assert set(range(5)) <= stored and len(stored) < 50 and lines == []
    computed = []
    for i in range(50):
        store.cached(f"run{i}", lambda i=i: computed.append(i) or {"x": np.full(1000, float(i)), "i": i})
    assert set(computed) == set(range(50)) - stored
    uninterrupted, _ = _quiet_store(tmp_path / "clean")
    for i in range(50):
        a = store.get(f"run{i}")
        b = uninterrupted.cached(f"run{i}", lambda i=i: {"x": np.full(1000, float(i)), "i": i})
        assert a["x"].tobytes() == b["x"].tobytes() and a["i"] == b["i"]


def test_two_processes_writing_one_folder_both_finish(tmp_path):
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), "20", "0.01"], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    for w in workers:
        w.stdout.close()
    store, lines = _quiet_store(tmp_path)
    assert all(store.get(f"run{i}")["i"] == i for i in range(20)) and lines == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]
