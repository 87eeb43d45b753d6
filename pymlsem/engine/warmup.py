"""Compile engine families ahead of the first fit (``python -m pymlsem warmup``), several at once."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from pymlsem.engine.binding import base_family
from pymlsem.engine.compiled import EXPECTED_SECONDS, load_family

__all__ = ["warmup"]


def warmup(families: Sequence[str], jobs: int = 1) -> list[str]:
    """Compile the families the disk cache lacks, ``jobs`` at a time in separate processes.

    Parameters
    ----------
    families
        Engine families (:data:`pymlsem.engine.compiled.FAMILIES`).
    jobs
        Processes compiling at once (each compiles one family into the shared disk cache).

    Returns
    -------
    list of str
        One line per family: already compiled, or compiled in how many seconds (also printed to stderr).
    """
    missing = [family for family in families if load_family(family, compile_missing=False) is None]
    lines = [f"pymlsem: {family} engine already compiled" for family in families if family not in missing]
    for line in lines:
        print(line, file=sys.stderr)
    missing.sort(key=lambda family: -EXPECTED_SECONDS[base_family(family)])  # the slowest first
    if len(missing) > 1 and jobs > 1:
        context = multiprocessing.get_context("spawn")  # no state of this process is shared
        with ProcessPoolExecutor(max_workers=min(jobs, len(missing)), mp_context=context) as pool:
            compiled = pool.map(compile_family, missing)
            for line in compiled:
                print(line, file=sys.stderr)
                lines.append(line)
    else:
        for family in missing:
            lines.append(compile_family(family))
            print(lines[-1], file=sys.stderr)
    return lines


def compile_family(family: str) -> str:
    """Compile one family in this process and say how long it took."""
    start = time.perf_counter()
    load_family(family)
    return f"pymlsem: {family} engine compiled ({time.perf_counter() - start:.1f} s)"
