"""Command line: ``python -m pymlsem warmup`` compiles the engine families for this machine, once.

Later fits of any model of a compiled family load its machine code from the disk cache instead of
compiling (see :mod:`pymlsem.engine.compiled`); the set-up script runs this step.
"""

from __future__ import annotations

import argparse
import sys
import time

from pymlsem.engine.compiled import load_family
from pymlsem.engine.sem import FAMILIES, WARMUP_FAMILIES


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pymlsem", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    warmup = commands.add_parser("warmup", help="compile the engine families for this machine (once)")
    warmup.add_argument(
        "families",
        nargs="*",
        metavar="family",
        help=f"default: {', '.join(WARMUP_FAMILIES)} (default priors)",
    )
    warmup.add_argument("--all", action="store_true", help="every family, also those for any prior family")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown engine family {', '.join(unknown)}; the families are {', '.join(FAMILIES)}")
    for family in args.families or (FAMILIES if args.all else WARMUP_FAMILIES):
        start = time.perf_counter()
        loaded = load_family(family)
        state = "compiled" if loaded.compiled_now else "already compiled"
        print(f"pymlsem: {family} engine {state} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
