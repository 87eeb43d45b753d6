"""Compile engine families ahead of the first fit (``python -m pymlsem warmup``), several at once."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from pymlsem.engine.compiled import expected_seconds, load_family, shared_family

__all__ = ["warmup"]


def warmup(families: Sequence[str], jobs: int = 1, also: Sequence[Callable[[], str]] = ()) -> list[str]:
    """Compile the families the disk cache lacks, ``jobs`` at a time in separate processes.

    Parameters
    ----------
    families
        Engine families (:data:`pymlsem.engine.compiled.FAMILIES`).
    jobs
        Processes compiling at once (each compiles one family into the shared disk cache).
    also
        Other compile steps, run first among the tasks: module-level functions (picklable) that compile
        into the disk cache and return a line to print.

    Returns
    -------
    list of str
        One line per family: already compiled, or compiled in how many seconds (also printed to stderr).
    """
    missing = [family for family in families if load_family(family, compile_missing=False) is None]
    lines = [f"pymlsem: {family} engine already compiled" for family in families if family not in missing]
    # families sharing their callbacks with another are compiled once, as that family
    missing = list(dict.fromkeys(shared_family(family) for family in missing))
    for line in lines:
        print(line, file=sys.stderr)
    missing.sort(key=lambda family: -expected_seconds(family))  # the slowest first
    tasks = [*also, *(partial(compile_family, family) for family in missing)]
    if len(tasks) > 1 and jobs > 1:
        context = multiprocessing.get_context("spawn")  # no state of this process is shared
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
            for line in pool.map(_run, tasks):
                print(line, file=sys.stderr)
                lines.append(line)
    else:
        for task in tasks:
            lines.append(task())
            print(lines[-1], file=sys.stderr)
    return lines


def _run(task: Callable[[], str]) -> str:
    return task()


def compile_family(family: str) -> str:
    """Compile one family in this process and say how long it took."""
    start = time.perf_counter()
    load_family(family)
    return f"pymlsem: {family} engine compiled ({time.perf_counter() - start:.1f} s)"
