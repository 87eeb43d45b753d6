"""Running a study's replicates: one after another, or as Dask tasks on a ``dask.distributed`` client, with
a progress bar over the replicates (rich's, as PyMC's own). Each replicate is a function of its task alone
(its seed included), so the results are the same either way and come back in the tasks' order.

The bar shows in a terminal, and in Jupyter where ``ipywidgets`` is installed (rich draws it there as a
widget; without one it would only warn); elsewhere (a log file, a documentation build) it stays off."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pymlsem.exceptions import ConvergenceWarning

__all__ = ["quiet_fit", "run_replicates"]

#: seconds between two looks at the Dask futures
_POLL_SECONDS = 0.25


def run_replicates(
    replicate: Callable[[Any], Any],
    tasks: Sequence[Any],
    client: Any = None,
    *,
    progressbar: bool = True,
    what: str = "replicates",
) -> list[Any]:
    """``replicate(task)`` for every task, in the tasks' order.

    Parameters
    ----------
    replicate
        A function of one task (picklable, for Dask).
    tasks
        The tasks.
    client
        A ``dask.distributed.Client``: each task runs as a Dask task (``client.map``); None: serially.
    progressbar
        Show how many replicates are done, and the time left (where a bar can be drawn).
    what
        The progress bar's label.

    Returns
    -------
    list
        The results.
    """
    console = Console()
    shown = console.is_terminal or (console.is_jupyter and find_spec("ipywidgets") is not None)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not (progressbar and shown)) as progress:
        bar = progress.add_task(what, total=len(tasks))
        if client is None:
            results = []
            for task in tasks:
                results.append(replicate(task))
                progress.advance(bar)
            return results
        futures = client.map(replicate, list(tasks), pure=False)
        while not all(future.done() for future in futures):
            progress.update(bar, completed=sum(future.done() for future in futures))
            time.sleep(_POLL_SECONDS)
        progress.update(bar, completed=len(futures))
        return client.gather(futures)


def quiet_fit(fit: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fit(*args, **kwargs)`` without its own ``ConvergenceWarning``: a study checks its replicates' fits
    and gives one warning for all of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)
