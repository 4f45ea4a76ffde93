"""Run the validation scenarios and write a Markdown report with plots.

    python -m validate                      # default, CPU-sized scenarios -> validation-report/
    python -m validate --only l2_digits     # one scenario
    python -m validate --size paper         # paper-sized (for a GPU)

Finished runs are stored under OUT/runs at once; rerunning resumes from them (--fresh to discard).
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import jax


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m validate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="validation-report", help="output folder (default: validation-report)")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run (default: all)")
    parser.add_argument("--size", choices=("default", "paper"), default="default")
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
    if args.fresh and (out / "runs").exists():
        shutil.rmtree(out / "runs")
    out.mkdir(parents=True, exist_ok=True)
    ctx = harness.Context(out, harness.RunStore(out / "runs"), size=args.size, log=lambda s: print(s, flush=True))
    results = []
    started = time.perf_counter()
    for i, module in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {module.NAME}: {module.TITLE}", flush=True)
        result = module.run(ctx)
        results.append(result)
        for c in result.checks:
            print(
                f"    {'pass' if c.passed else 'FAIL'}  {c.name}: {c.value:.4g} ({c.direction} {c.threshold:.4g})",
                flush=True,
            )
        print(f"    {'PASS' if result.passed else 'FAIL'} in {result.seconds:.0f} s", flush=True)
        harness.write_report(results, out, size=args.size)  # a partial report survives an interruption
    report = harness.write_report(results, out, size=args.size)
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} scenarios passed in {time.perf_counter() - started:.0f} s; report: {report}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
