"""A study's replicates come back in the tasks' order, serially or from a client's futures, with or without
the progress bar (no sampling: the replicates are plain functions)."""

from __future__ import annotations

import pytest

from pymlsem.studies.replicates import run_replicates


class _Future:
    """A future that is done after a given number of looks (as a Dask task finishing later)."""

    def __init__(self, value: int, looks: int) -> None:
        self.value, self.looks = value, looks

    def done(self) -> bool:
        self.looks -= 1
        return self.looks < 0


class _Client:
    """The part of ``dask.distributed.Client`` the runner uses: ``map`` and ``gather``."""

    def __init__(self) -> None:
        self.mapped: list = []

    def map(self, function, tasks, pure=True):
        assert pure is False  # each replicate draws its own random numbers: never deduplicated
        self.mapped = list(tasks)
        return [_Future(function(task), looks=len(tasks) - k) for k, task in enumerate(tasks)]

    def gather(self, futures):
        return [future.value for future in futures]


@pytest.mark.parametrize("progressbar", [True, False])
def test_serial_replicates_come_back_in_order(progressbar: bool) -> None:
    assert run_replicates(lambda t: t * t, [3, 1, 2], progressbar=progressbar) == [9, 1, 4]


@pytest.mark.parametrize("progressbar", [True, False])
def test_a_clients_replicates_come_back_in_order_when_all_are_done(progressbar: bool) -> None:
    client = _Client()
    assert run_replicates(lambda t: -t, [5, 6, 7], client, progressbar=progressbar) == [-5, -6, -7]
    assert client.mapped == [5, 6, 7]
