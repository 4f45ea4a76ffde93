"""Check the paper-sized scenarios before a GPU's time is spent on them, and size their training.

    python -m validate.preflight                         # every scenario at --size paper
    python -m validate.preflight --only l2_digits --timeout 60

Each scenario runs at the chosen size with its training replaced: every `train_sweep` call is
checked and compiled, not run (`widenet.experiment.train.sweep_cost`: XLA's FLOP count and the
memory the compiled program holds), and answers with a result of the right shapes filled with
smooth stand-in curves (finite, positive, losses with a minimum inside the run, falling spectra:
what minima, logs and slopes accept), so the scenario goes on to its next training program. What this shows, per scenario:

- whether the paper size's setup (data sizes, networks, kernels, configs) gets to its first
  training program, and whether `sweep_cost` accepts and compiles each program it reaches: an error
  there ("ERROR ...") is a bug that would have cost GPU time;
- each training program's runs, steps, FLOPs and memory, at the paper's shapes;
- after the first program the scenario works on stand-in results, so an error there ("stopped after k
  programs") says nothing about the paper size: the programs after it are not sized.

The work before a scenario's first program (kernels, theory) runs for real, on this machine; a
scenario that takes more than `--timeout` seconds of it is reported as such. Each scenario runs in
its own process, killed a minute after its timeout if one long computation holds it.
"""

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict
from pathlib import Path

import jax
import numpy as np

H100_FP64_FLOPS = 67e12
"""NVIDIA H100 SXM's FP64 tensor-core peak (datasheet): times at it are lower bounds."""


class _Timeout(BaseException):
    """The alarm: a BaseException, so that no `except Exception` in the code it interrupts takes it."""


class _ProgramError(Exception):
    """`sweep_cost` refused a training program (its inputs at this size, or its compilation)."""


def _fake_result(train_module, cost, args, kwargs):
    """A `TrainResult` of the shapes `train_sweep(*args, **kwargs)` returns, filled with smooth stand-in curves.

    Over the record fraction u in [0, 1]: losses 0.2 + (u - 1/2)² (train) and 0.3 + (u - 3/5)² (test), each
    with a minimum inside the run; accuracies 1/2 + 2u/5; kernel and Hessian eigenvalues e^{-u}/(i + 1), the
    i-th below the first; parameter norms e^{-u/2}. Finite, positive and shaped as real curves are, so that
    the analyses scenarios run on results (minima, log axes, slopes, sorted spectra) accept them and reach
    their next training program; the values mean nothing.
    """
    apply_fn, params, data, config = args[:4]
    runs, k = cost.runs, cost.records + 1
    steps = np.minimum(np.arange(k) * config.record_every, config.steps)
    u = np.broadcast_to(np.linspace(0.0, 1.0, k), (runs, k))
    ones = np.ones((runs, k))

    def spectrum(n):
        return np.exp(-u)[..., None] / np.arange(1, n + 1)

    outputs = apply_fn(jax.tree.map(lambda p: p[0], params), np.asarray(data.x_train[:1])).shape[-1]
    extra = {}
    one = jax.tree.map(lambda p: p[0], params)
    o_args = kwargs.get("observable_args")
    first_args = () if o_args is None else (jax.tree.map(lambda a: a[0], o_args),)
    for name, fn in (kwargs.get("observables") or {}).items():
        shape = jax.eval_shape(lambda p, fn=fn: fn(p, 0, *first_args), one).shape
        extra[name] = np.ones((runs, k) + tuple(shape))
    train_loss = 0.2 + (u - 0.5) ** 2
    return train_module.TrainResult(
        steps=steps, t=np.cumsum(ones, axis=1) - 1, train_loss=train_loss, weighted_loss=train_loss.copy(),
        l2=np.exp(-u), test_loss=0.3 + (u - 0.6) ** 2, train_accuracy=0.5 + 0.4 * u, test_accuracy=0.5 + 0.4 * u,
        param_norm=np.exp(-u / 2), ntk_top=spectrum(config.n_eigs), hessian_top=spectrum(config.n_hessian_eigs),
        f_train=np.ones((runs, k, len(data.x_train), outputs)) if config.record_outputs else None,
        f_test=np.ones((runs, k, len(data.x_test), outputs)) if config.record_outputs else None,
        diverged_at=np.full(runs, -1), extra=extra, final_params=params,
        step_loss=0.2 + (np.linspace(0.0, 1.0, config.steps) - 0.5) ** 2 * np.ones((runs, 1)) if config.record_step_loss else None,
    )  # fmt: skip


def _intercepted(programs, log=None):
    """Replace `train_sweep` wherever a module holds it by a recorder of its `sweep_cost` (each
    program also appended to the file `log` at once, as a JSON line)."""
    from widenet.experiment import train as train_module

    original = train_module.train_sweep

    def recorder(*args, **kwargs):
        try:
            cost = train_module.sweep_cost(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a bug of this size, not of the stand-ins
            raise _ProgramError(f"training program {len(programs) + 1}") from err
        label = kwargs.get("progress")
        programs.append({"label": label if isinstance(label, str) else "", **asdict(cost)})
        if log is not None:
            with open(log, "a") as fh:
                fh.write(json.dumps(programs[-1]) + "\n")
        return _fake_result(train_module, cost, args, kwargs)

    patched = [m for m in list(sys.modules.values()) if getattr(m, "train_sweep", None) is original]
    for module in patched:
        module.train_sweep = recorder

    def restore():
        for module in patched:
            module.train_sweep = original

    return restore


def _check_scenario(module, size, timeout, out, log=None):
    from widenet import harness

    programs = []
    restore = _intercepted(programs, log)
    # a temporary store: stand-in results must never meet real ones
    store = harness.RunStore(out / "runs", code=[], context={"scenario": module.NAME, "size": size, "preflight": 1})
    ctx = harness.Context(out, store, size=size, log=lambda line: None)
    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(_Timeout()))
    signal.alarm(timeout)
    status, error = "ran to the end", ""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # stand-in results make noise, not news
            warnings.simplefilter("ignore")
            module.run(ctx)
    except _Timeout:
        status = f"timed out after {timeout} s"
    except _ProgramError as err:
        cause = err.__cause__
        where = traceback.extract_tb(cause.__traceback__)[-1]
        error = f"{type(cause).__name__}: {cause} ({Path(where.filename).name}:{where.lineno})"
        status = f"ERROR in {err}"
    except Exception as err:  # noqa: BLE001 - every failure is reported with where it happened
        where = traceback.extract_tb(err.__traceback__)[-1]
        error = f"{type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"
        status = (
            "ERROR before its first training program" if not programs else f"stopped after {len(programs)} programs"
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        restore()
    return {"name": module.NAME, "status": status, "error": error, "seconds": time.perf_counter() - started,
            "programs": programs}  # fmt: skip


def _in_child(name, size, timeout, rows_file):
    """`_check_scenario` in a fresh process, killed `_GRACE` seconds after its own timeout: a long
    computation inside one XLA call does not see the alarm until it returns. The programs it sized
    before a kill are kept."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "validate.preflight", "--size", size, "--timeout", str(timeout),
               "--child", f"{name}:{rows_file}"]  # fmt: skip
    try:
        done = subprocess.run(command, timeout=timeout + _GRACE, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        done = None
    if done is not None and done.returncode == 0 and rows_file.exists():
        return json.loads(rows_file.read_text())
    sized = Path(str(rows_file) + ".programs")
    programs = [json.loads(line) for line in sized.read_text().splitlines()] if sized.exists() else []
    if done is None:
        status, error = f"killed after {timeout + _GRACE} s (inside one long computation)", ""
    else:
        status, error = f"the process failed (exit {done.returncode})", done.stderr.strip()[-300:]
    return {"name": name, "status": status, "error": error, "seconds": time.perf_counter() - started,
            "programs": programs}  # fmt: skip


_GRACE = 60


def _table(rows):
    lines = [
        "| scenario | status | programs sized | largest program: runs × steps | its memory | all programs' FLOPs | "
        "time at H100 FP64 peak (lower bound) | CPU seconds here |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ps = r["programs"]
        if ps:
            big = max(ps, key=lambda p: p["memory_bytes"])
            flops = sum(p["flops"] for p in ps)
            cells = (f"{big['runs']} × {big['steps']}", f"{big['memory_bytes'] / 2**30:.2f} GiB", f"{flops:.2e}",
                     f"{flops / H100_FP64_FLOPS:.2g} s")  # fmt: skip
        else:
            cells = ("-", "-", "-", "-")
        status = r["status"] + (f": {r['error']}" if r["error"] else "")
        lines.append(f"| {r['name']} | {status} | {len(ps)} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m validate.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("paper", "default", "smoke"), default="paper")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names (default: all)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per scenario (default 300)")
    parser.add_argument("--out", default=None, help="folder for preflight.md and preflight.json (default: none)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one scenario, rows to a file
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    from .scenarios import ALL

    if args.child:
        name, rows_file = args.child.split(":", 1)
        module = next(m for m in ALL if m.NAME == name)
        with tempfile.TemporaryDirectory(prefix="widenet-preflight-") as tmp:
            row = _check_scenario(module, args.size, args.timeout, Path(tmp), log=rows_file + ".programs")
        Path(rows_file).write_text(json.dumps(row))
        return 0

    chosen = [m for m in ALL if args.only is None or m.NAME in args.only]
    unknown = set(args.only or ()) - {m.NAME for m in ALL}
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {[m.NAME for m in ALL]}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="widenet-preflight-") as tmp:
        for i, module in enumerate(chosen, 1):
            print(f"[{i}/{len(chosen)}] {module.NAME} at --size {args.size}", flush=True)
            row = _in_child(module.NAME, args.size, args.timeout, Path(tmp) / f"{module.NAME}.json")
            rows.append(row)
            print(f"    {row['status']}{': ' + row['error'] if row['error'] else ''}; {len(row['programs'])} "
                  f"training programs sized in {row['seconds']:.0f} s", flush=True)  # fmt: skip
    table = _table(rows)
    print("\n" + table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "preflight.json").write_text(json.dumps({"size": args.size, "scenarios": rows}, indent=1))
        (out / "preflight.md").write_text(f"# Preflight at --size {args.size}\n\n{table}\n")
    return 1 if any(r["status"].startswith(("ERROR", "the process failed")) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
