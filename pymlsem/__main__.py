"""Command line: ``python -m pymlsem warmup`` compiles the engine families for this machine, once.

Later fits of any model of a compiled family load its machine code from the disk cache instead of
compiling (see :mod:`pymlsem.engine.compiled`); the set-up script runs this step.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from pymlsem.engine.compiled import EXPECTED_SECONDS, load_family
from pymlsem.engine.sem import FAMILIES, WARMUP_FAMILIES, base_family


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
    warmup.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="families compiled at once (default: the cores)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown engine family {', '.join(unknown)}; the families are {', '.join(FAMILIES)}")
    families = args.families or (FAMILIES if args.all else WARMUP_FAMILIES)
    missing = [family for family in families if load_family(family, compile_missing=False) is None]
    for family in families:
        if family not in missing:
            print(f"pymlsem: {family} engine already compiled", file=sys.stderr)
    if len(missing) > 1 and args.jobs > 1:
        # the slowest first; each process compiles its family into the shared disk cache
        missing.sort(key=lambda family: -EXPECTED_SECONDS[base_family(family)])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(missing)), mp_context=context) as pool:
            for line in pool.map(_compile, missing):
                print(line, file=sys.stderr)
    else:
        for family in missing:
            print(_compile(family), file=sys.stderr)
    return 0


def _compile(family: str) -> str:
    """Compile one family (in this process) and say how long it took."""
    start = time.perf_counter()
    load_family(family)
    return f"pymlsem: {family} engine compiled ({time.perf_counter() - start:.1f} s)"


if __name__ == "__main__":
    raise SystemExit(main())
