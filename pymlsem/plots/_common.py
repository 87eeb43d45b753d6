"""What the plot modules share: optional imports, the draws of a fit by parameter name, saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pymlsem.exceptions import ControlError, PymlsemError

SAMPLE_DIMS = ("chain", "draw")
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


def is_sem(fit: Any) -> bool:
    """Whether ``fit`` is a SEM fit (``fit.model`` a SEM) rather than a mixed-model fit (``fit.spec``)."""
    return hasattr(getattr(fit, "model", None), "partable")


def group(idata: Any, name: str) -> xr.Dataset | None:
    """One group of a fit's posterior object (a DataTree, or a stand-in namespace) as a Dataset."""
    if isinstance(idata, xr.DataTree):
        return idata[name].to_dataset() if name in idata.children else None
    node = getattr(idata, name, None)
    if node is None or isinstance(node, xr.Dataset):
        return node
    if isinstance(node, xr.DataTree):
        return node.to_dataset()
    return xr.Dataset(dict(node))


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


def columns(values: np.ndarray, names: Sequence[str]) -> xr.DataArray:
    """Draws (chain, draw, parameter) with plain integer chain/draw coordinates and the given names."""
    chains, draws = values.shape[:2]
    return xr.DataArray(
        np.asarray(values, dtype=float),
        dims=(*SAMPLE_DIMS, "parameter"),
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "parameter": list(names)},
    )


def flat(data: xr.DataArray) -> np.ndarray:
    """A posterior variable as (chain, draw, k), its other dims flattened in order."""
    values = np.asarray(data.transpose(*SAMPLE_DIMS, ...).values, dtype=float)
    return values.reshape(*values.shape[:2], -1)


# ------------------------------------------------------------------------------------------------- SEM
def sem_lookup(fit: Any) -> tuple[list[str], dict[str, list[int]]]:
    """Names of a SEM fit's free then defined parameters, and every name a user may give for each.

    A parameter is named by its display name (``fw=~y2@within``, or its label), by any of the rows it
    stands for, and by a row without its ``@within``/``@between`` suffix when that is unambiguous.
    """
    built = fit.model.built
    names = [p.name for p in built.free] + list(built.defined)
    lookup: dict[str, list[int]] = {}
    short: dict[str, set[int]] = {}
    for i, parameter in enumerate(built.free):
        for alias in (parameter.name, *parameter.aliases):
            lookup.setdefault(alias, [i])
            if "@" in alias:
                short.setdefault(alias.rsplit("@", 1)[0], set()).add(i)
    for name, where in short.items():
        lookup.setdefault(name, sorted(where) if len(where) == 1 else [])
    for j, name in enumerate(built.defined, start=len(built.free)):
        lookup.setdefault(name, [j])
    return names, lookup


def sem_draws(fit: Any, source: xr.Dataset | None = None) -> xr.DataArray:
    """All free (``parameters``) and defined (``defined``) parameters of a SEM fit as named columns."""
    source = group(fit.idata, "posterior") if source is None else source
    names, _ = sem_lookup(fit)
    parts = [flat(source["parameters"])]
    if fit.model.built.defined and "defined" in source:
        parts.append(flat(source["defined"]))
    values = np.concatenate(parts, axis=-1)
    return columns(values, names[: values.shape[-1]])


def fit_draws(fit: Any, var_names: str | Sequence[str] | None = None) -> xr.DataArray:
    """The draws a plot shows, dims ``(chain, draw, parameter)``.

    SEM fits: the free parameters (``parameters``) by default, any free or defined parameter by name.
    Mixed fits: MCMCglmm's ``Sol`` (fixed effects) by default, any ``Sol`` or ``VCV`` column by name.
    """
    names = as_names(var_names)
    if is_sem(fit):
        draws = sem_draws(fit)
        _, lookup = sem_lookup(fit)
        if names is None:
            return draws.isel(parameter=slice(0, len(fit.model.built.free)))
        return select(draws, names, lookup)
    if names is None:
        draws = fit.sol_draws()
        draws = draws if draws.sizes["parameter"] else fit.vcv_draws()
    else:
        draws = xr.concat([fit.sol_draws(), fit.vcv_draws()], dim="parameter")
        known = [str(name) for name in draws["parameter"].values]
        draws = select(draws, names, {name: [i] for i, name in enumerate(known)})
    return columns(
        draws.transpose(*SAMPLE_DIMS, "parameter").values, [str(n) for n in draws["parameter"].values]
    )


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
