"""What the plot modules share: optional imports, the draws of a fit by parameter name, saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from pymlsem.exceptions import ControlError, PymlsemError
from pymlsem.workflow.protocol import Fitted

EXTRA = "pip install 'pymlsem[plots]'"


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            f"plotting needs matplotlib, which is not installed: pip install matplotlib (or {EXTRA})"
        ) from err
    return plt


def arviz_plots() -> Any:
    """``arviz_plots`` (installed with ArviZ 1.x); its figures need matplotlib (checked first)."""
    pyplot()
    import arviz_plots

    return arviz_plots


def no_var_labeller() -> Any:
    """ArviZ's ``NoVarLabeller``: panel titles name the parameter only (every plot has one variable)."""
    from arviz_base.labels import NoVarLabeller

    return NoVarLabeller()


def check_positive_integer(name: str, value: Any) -> None:
    """Raise a PymlsemError unless ``value`` (the argument ``name``) is a positive ``int`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PymlsemError(f"{name} must be a positive integer, not {value!r}")


def as_names(var_names: str | Sequence[str] | None) -> list[str] | None:
    """``var_names`` as a list (a single name allowed)."""
    if var_names is None:
        return None
    return [var_names] if isinstance(var_names, str) else [str(name) for name in var_names]


def select(
    draws: xr.DataArray, var_names: Sequence[str] | None, lookup: dict[str, list[int]]
) -> xr.DataArray:
    """The columns of ``draws`` (dim ``parameter``) that ``var_names`` name through ``lookup``.

    ``lookup`` maps every accepted name to the positions it selects; an empty list marks an ambiguous name.
    """
    if var_names is None:
        return draws
    if not var_names:
        raise PymlsemError("var_names is empty: name at least one parameter, or pass None for the defaults")
    unknown = [name for name in var_names if name not in lookup]
    if unknown:
        known = [str(name) for name in draws["parameter"].values]
        raise PymlsemError(f"no parameter(s) {unknown} in the fit; choose among {known}")
    ambiguous = [name for name in var_names if not lookup[name]]
    if ambiguous:
        raise PymlsemError(
            f"{ambiguous} name parameters at both levels; add @within or @between "
            f"(e.g. {ambiguous[0]}@within)"
        )
    return draws.isel(parameter=[i for name in var_names for i in lookup[name]])


def fit_draws(fit: Fitted, var_names: str | Sequence[str] | None = None) -> xr.DataArray:
    """The draws a plot shows, dims ``(chain, draw, parameter)``: the fit's default parameters
    (:meth:`~pymlsem.workflow.protocol.Fitted.parameter_columns`; a SEM's free parameters, a mixed model's
    fixed effects), or the parameters ``var_names`` names (any name the fit accepts for them)."""
    draws, lookup, default = fit.parameter_columns()
    names = as_names(var_names)
    if names is None:
        return draws.isel(parameter=default)
    return select(draws, names, lookup)


def tree(**groups: xr.DataArray) -> xr.DataTree:
    """A DataTree with one variable ``parameters`` per group, for arviz_plots."""
    return xr.DataTree.from_dict({name: xr.Dataset({"parameters": da}) for name, da in groups.items()})


def layout(n_panels: int, col_wrap: int = 4) -> dict[str, Any]:
    """arviz_plots layout arguments: ``col_wrap`` panels a row, each about 3.4 x 2.5 inches."""
    cols = max(1, min(col_wrap, n_panels))
    rows = -(-n_panels // cols)
    return {"col_wrap": col_wrap, "figure_kwargs": {"figsize": (3.4 * cols + 0.4, 2.5 * rows + 0.5)}}


def finish(figure: Any, path: str | Path | None) -> Any:
    """Save ``figure`` to ``path`` (format from its suffix) when given; return it."""
    if figure.get_layout_engine() is None:  # arviz_plots' figures: room for titles and tick labels
        figure.set_layout_engine("constrained")
    if path is not None:
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            raise ControlError(
                f"cannot save the figure to {str(path)!r}: the folder {str(folder)!r} does not exist"
            )
        figure.savefig(path)
    return figure
