"""The public API a user finds from ``pymlsem.``: every name resolves and is documented (numpydoc)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import pymlsem


@pytest.mark.parametrize("name", pymlsem.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name: str) -> None:
    value = getattr(pymlsem, name)
    if name == "__version__":
        assert isinstance(value, str)
        return
    assert inspect.getdoc(value), f"pymlsem.{name} has no docstring"
    if inspect.isfunction(value) and inspect.signature(value).parameters:
        assert "Parameters\n----------" in inspect.getdoc(value), f"pymlsem.{name}: numpydoc Parameters"


def test_data_helpers_are_found_from_the_package() -> None:
    helpers = {"load_dataset", "simulate", "center_grand", "center_within", "cluster_means", "datasets"}
    assert helpers <= set(pymlsem.__all__)
    frame = pymlsem.load_dataset("Demo.twolevel")
    design = pymlsem.datasets.mediation_111(n_clusters=20, cluster_size=5, seed=1)
    assert len(frame) == 2500 and len(design.data) == 100


_IMPORT_GC = (
    "import gc, sys\n"
    "{before}\n"
    "class Cycle:\n"
    "    pass\n"
    "import pymlsem\n"
    "cycle = Cycle(); cycle.me = cycle; del cycle\n"  # a cycle made after the import
    "print(gc.isenabled(), gc.get_freeze_count() > 100_000, gc.collect() >= 1)\n"
)


@pytest.mark.parametrize(
    ("before", "expected"),
    [("", "True True True"), ("gc.disable()", "False True True")],
    ids=["collecting", "disabled by the user"],
)
def test_importing_freezes_what_it_imported_and_leaves_collection_as_it_found_it(
    before: str, expected: str
) -> None:
    """Importing pymlsem pauses the cycle collector, freezes what it imported and restores the collector's
    state; cycles made afterwards are collected (a fresh process: this one imported pymlsem already)."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_GC.format(before=before)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[-3:] == expected.split()
