"""Run the validation scenarios and write a Markdown report with plots.

    python -m validate                      # default, CPU-sized scenarios -> validation-report/
    python -m validate --only l2_digits     # one scenario
    python -m validate --size paper         # paper-sized (for a GPU)

Finished runs are stored under OUT/runs at once; rerunning resumes from them (--fresh to discard).
A stored run is reused only if its configuration, the code that computes it and the jax/NT versions
are unchanged (see widenet.store). `--only` adds to an existing report of the same size.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import jax


def _matmul_rate(n=1024, repeats=5):
    """This machine's float64 matmul rate now, in GFLOP/s (n x n products, best of `repeats` after a warm-up):
    the harness's wall time on a shared machine is comparable between runs only at similar rates."""
    import jax.numpy as jnp

    a = jnp.ones((n, n), dtype=jnp.float64)
    product = jax.jit(lambda u, v: u @ v)
    product(a, a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m validate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="validation-report", help="output folder (default: validation-report)")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run (default: all)")
    parser.add_argument(
        "--size", choices=("default", "paper", "smoke"), default="default", help="smoke: tiny, machinery only"
    )
    parser.add_argument("--fresh", action="store_true", help="discard stored runs first")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)

    jax.config.update("jax_enable_x64", True)  # theory in float64; entry points set it, never the library
    from widenet import harness

    from .scenarios import ALL

    if args.list:
        for module in ALL:
            print(f"{module.NAME:20s} {module.TITLE}")
        return 0
    chosen = [m for m in ALL if args.only is None or m.NAME in args.only]
    unknown = set(args.only or ()) - {m.NAME for m in ALL}
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {[m.NAME for m in ALL]}")
    out = Path(args.out)
    try:
        if args.fresh and (out / "runs").exists():
            shutil.rmtree(out / "runs")
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        print(f"python -m validate: cannot write to the output folder {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    from . import scenarios

    def log(line):
        print(line, flush=True)

    # --only adds to an earlier report of the same size instead of replacing it
    earlier = {r.name: r for r in harness.read_results(out, size=args.size)} if args.only else {}
    fresh = {}
    rate_before = _matmul_rate()
    print(f"machine: float64 matmul {rate_before:.1f} GFLOP/s", flush=True)
    started = time.perf_counter()
    for i, module in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {module.NAME}: {module.TITLE}", flush=True)
        # every stored run's identity: this scenario's whole configuration at this size, the widenet
        # package's source, this scenario's and the shared helpers' source, and the jax/NT versions
        store = harness.RunStore(
            out / "runs",
            code=[module, scenarios._common],
            context={"scenario": module.NAME, "size": args.size, "config": getattr(module, "SIZES", {}).get(args.size)},
            log=log,
        )
        ctx = harness.Context(out, store, size=args.size, log=log)
        result = module.run(ctx)
        fresh[module.NAME] = result
        for c in result.checks:
            print(f"    {c.verdict:12s} {c.name}: {c.measured_text()} ({c.criterion_text()})", flush=True)
        print(f"    {result.verdict} in {result.seconds:.0f} s", flush=True)
        results = [fresh.get(m.NAME) or earlier.get(m.NAME) for m in ALL]
        results = [r for r in results if r is not None]
        harness.write_report(results, out, size=args.size)  # a partial report survives an interruption
    report = out / "report.md"
    counts = {v: sum(r.verdict == v for r in fresh.values()) for v in ("PASS", "INCONCLUSIVE", "FAIL")}
    elapsed = time.perf_counter() - started
    print(
        f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['INCONCLUSIVE']} inconclusive of "
        f"{len(fresh)} scenarios in {elapsed:.0f} s; report: {report}\n"
        f"machine: float64 matmul {rate_before:.1f} GFLOP/s before the scenarios, {_matmul_rate():.1f} after"
    )
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
