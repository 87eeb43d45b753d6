"""Compile engine families ahead of the first fit (``python -m pymlsem warmup``), several at once."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial

from pymlsem.engine.compiled import expected_seconds, load_family, shared_family
from pymlsem.engine.families import COMPILE_AFTER

__all__ = ["compile_order", "warmup"]


def warmup(families: Sequence[str], jobs: int = 1, also: Sequence[Callable[[], str]] = ()) -> list[str]:
    """Compile the families the disk cache lacks, ``jobs`` at a time in separate processes.

    A family that reuses much of another's compiled code (:data:`pymlsem.engine.families.COMPILE_AFTER`)
    starts once that one is compiled, so that it loads the shared code from the disk cache instead of
    compiling it a second time alongside; otherwise the slowest start first.

    Parameters
    ----------
    families
        Engine families (:data:`pymlsem.engine.compiled.FAMILIES`).
    jobs
        Processes compiling at once (each compiles one family into the shared disk cache).
    also
        Other compile steps: module-level functions (picklable) that compile into the disk cache and
        return a line to print. In processes they start right after the slowest family, before the others.

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
    ordered = compile_order(missing)
    if jobs > 1 and len(also) + len(ordered) > 1:
        lines += _in_processes(ordered, also, jobs)
    else:
        for task in [*also, *(partial(compile_family, family) for family in ordered)]:
            lines.append(task())
            print(lines[-1], file=sys.stderr)
    return lines


def compile_order(families: Sequence[str]) -> list[str]:
    """``families`` in the order one process compiles them: the slowest first, each family that reuses
    another's code after that one."""
    pending = sorted(families, key=lambda family: -expected_seconds(family))
    ordered: list[str] = []
    while pending:
        family = next(family for family in pending if _ready(family, pending))
        pending.remove(family)
        ordered.append(family)
    return ordered


def _ready(family: str, pending: Sequence[str]) -> bool:
    """Whether ``family`` waits for none of the families still to compile."""
    return COMPILE_AFTER.get(family) not in pending


def _in_processes(ordered: list[str], also: Sequence[Callable[[], str]], jobs: int) -> list[str]:
    """Compile the tasks ``jobs`` at a time, each family once the family it waits for is compiled."""
    lines: list[str] = []
    pending = list(ordered)
    running: dict[Future[str], str | None] = {}
    context = multiprocessing.get_context("spawn")  # no state of this process is shared
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        if pending:  # the slowest family first (the longest chain starts with it), then the other tasks
            first = pending.pop(0)
            running[pool.submit(compile_family, first)] = first
        for task in also:
            running[pool.submit(task)] = None
        while pending or running:
            waiting = [*pending, *(family for family in running.values() if family is not None)]
            for family in [family for family in pending if _ready(family, waiting)]:
                if len(running) >= jobs:
                    break
                pending.remove(family)
                running[pool.submit(compile_family, family)] = family
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                lines.append(future.result())
                print(lines[-1], file=sys.stderr)
    return lines


def compile_family(family: str) -> str:
    """Compile one family in this process and say how long it took."""
    start = time.perf_counter()
    load_family(family)
    return f"pymlsem: {family} engine compiled ({time.perf_counter() - start:.1f} s)"
