"""Command line: ``python -m pymlsem warmup`` compiles the engine families for this machine, once.

It also compiles the post-fit checks' densities (:func:`pymlsem.workflow.pointwise.compile_model_checks`,
:func:`pymlsem.workflow.incomplete.compile_incomplete_checks`).

Later fits of any model of a compiled family load its machine code from the disk cache instead of
compiling (see :mod:`pymlsem.engine.compiled`); the set-up script runs this step.
"""

from __future__ import annotations

import argparse
import os

from pymlsem.engine.compiled import FAMILIES, WARMUP_FAMILIES
from pymlsem.engine.warmup import warmup
from pymlsem.workflow.incomplete import compile_incomplete_checks
from pymlsem.workflow.pointwise import compile_model_checks


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pymlsem", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("warmup", help="compile the engine families for this machine (once)")
    command.add_argument(
        "families",
        nargs="*",
        metavar="family",
        help=f"default: {', '.join(WARMUP_FAMILIES)} (default priors)",
    )
    command.add_argument("--all", action="store_true", help="every family, also those for any prior family")
    command.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="families compiled at once (default: the cores)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown engine family {', '.join(unknown)}; the families are {', '.join(FAMILIES)}")
    families = args.families or (FAMILIES if args.all else WARMUP_FAMILIES)
    warmup(families, jobs=args.jobs, also=(compile_model_checks, compile_incomplete_checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
