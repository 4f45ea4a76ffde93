"""`python -m widenet info`: versions, devices, float64 and the neural-tangents shims in force."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m widenet", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("info",), help="info: print versions, devices and shims")
    parser.add_argument("--check-ntk", action="store_true", help="also run the implementation-3 NTK self-check")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # an entry point: theory runs in float64
    import widenet

    if args.check_ntk:
        widenet._nt.empirical_ntk_fn(lambda params, x: x)  # builds nothing heavy; runs the check
    widenet.show_versions()
    return 0


if __name__ == "__main__":
    sys.exit(main())
