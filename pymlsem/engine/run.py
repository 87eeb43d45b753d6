"""Sample a model through its engine family with nutpie, and give the posterior the per-model layout.

The compiled family (:mod:`pymlsem.engine.compiled`) takes the model's arrays (``bind`` of
:mod:`pymlsem.engine.sem` or :mod:`pymlsem.engine.mixed`) as nutpie's user data. Its expanded values are
the constrained values of the per-model PyMC variables and what the family derives from them (a SEM's
table rows on lavaan's scale; a mixed model's fixed effects, SDs and correlations); from them the
posterior gets exactly the variables a per-model fit has, with the same dimensions and coordinates.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytensor.tensor as pt
import xarray as xr

from pymlsem.build.expressions import evaluate
from pymlsem.build.rewrites import compile_mode
from pymlsem.engine import glmm, latent, mixed, sem
from pymlsem.engine.binding import Binding, Unsupported
from pymlsem.engine.compiled import CompiledFamily, family_inputs, load_family
from pymlsem.engine.starts import initial_point_function
from pymlsem.mlm.model import BuiltMixedModel
from pymlsem.mlm.stats import crossed_split, grouping_hierarchy

__all__ = ["engine_binding", "family_user_data", "nutpie_model", "sample_binding"]

#: families this process has sampled through: a later fit reuses their compiled code, even when the
#: first one compiled it
_SAMPLED: set[str] = set()


def engine_binding(spec) -> tuple[Binding | None, str]:
    """The model (a :class:`pymlsem.api.SEM` or a :class:`pymlsem.mlm.model.BuiltMixedModel`) as data of an
    engine family, or None and why it compiles as itself."""
    import nutpie.compile_pymc as ncp

    needed = ("CompiledPyMCModel", "update_user_data", "_rv_dict_to_flat_array_wrapper", "_wrap_with_lock")
    missing = [name for name in needed if not hasattr(ncp, name)]
    if missing:
        return None, f"this nutpie version has no {', '.join(missing)}, which the engine uses"
    try:
        return _module(spec).bind(spec), ""
    except Unsupported as why:
        return None, str(why)


def family_user_data(binding: Binding, family: CompiledFamily) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The model's arrays as the family's callbacks read them: the arrays (read-only copies, which must
    outlive every call) and the record of their addresses and shapes passed to each call."""
    import nutpie.compile_pymc as ncp

    shared_data = {}
    for key, (name, dtype, _) in zip(family.keys, family_inputs(binding.family), strict=True):
        array = np.array(binding.data[name], dtype=dtype, order="C", copy=True)
        array.flags.writeable = False
        shared_data[key] = array
    user_data = np.zeros((), dtype=family.record_dtype)
    return shared_data, ncp.update_user_data(user_data, shared_data)


def nutpie_model(binding: Binding, family: CompiledFamily, model, shapes: list | None = None) -> Any:
    """A nutpie compiled model: the family's callbacks with this model's arrays as user data.

    Parameters
    ----------
    binding
        The model's arrays.
    family
        The loaded family.
    model
        The per-model PyMC model (for the initial point: lavaan-like starts with PyMC's jitter).
    shapes
        The shapes of the model's value (unconstrained) variables, in order, where the family knows them
        (else read from each variable's dimensions or its positions).
    """
    import nutpie.compile_pymc as ncp

    shared_data, user_data = family_user_data(binding, family)
    # nutpie asks for initial points from several threads at once: a compiled PyTensor function is not
    # thread-safe, so calls are serialised (as nutpie's own compiler does)
    initial = ncp._wrap_with_lock(initial_point_function(model))
    names = [value.name for value in model.value_vars]
    if shapes is None:
        shapes = [
            _value_shape(model, value, len(positions))
            for value, (*_, positions) in zip(model.value_vars, binding.variables, strict=True)
        ]
    n_dim, n_derived = binding.n_dim, binding.n_derived
    shape_info = (
        ["engine_values", "engine_derived"],
        [slice(0, n_dim), slice(n_dim, n_dim + n_derived)],
        [(n_dim,), (n_derived,)],
    )
    return ncp.CompiledPyMCModel(
        _n_dim=n_dim,
        dims={},
        _coords={},
        _shapes={"engine_values": (n_dim,), "engine_derived": (n_derived,)},
        compiled_logp_func=family.logp,
        compiled_expand_func=family.expand,
        initial_point_func=ncp._rv_dict_to_flat_array_wrapper(initial, names, shapes),
        shared_data=shared_data,
        shared_var_keys={},
        user_data=user_data,
        n_expanded=n_dim + n_derived,
        shape_info=shape_info,
        logp_func=None,
        expand_func=None,
        reparameterized_names=[],
    )


def _value_shape(model, value, size: int) -> tuple[int, ...]:
    """The shape of a value variable (unconstrained) of ``size`` elements: from its variable's dimensions
    when they match (e.g. a GLMM's standardised effects, levels x effects), else a vector (or scalar)."""
    dims = model.named_vars_to_dims.get(model.values_to_rvs[value].name, ())
    if value.ndim == 0:
        return ()
    if len(dims) == value.ndim:
        return tuple(len(model.coords[d]) for d in dims)
    return (size,)


def sample_binding(
    binding: Binding, spec, *, draws: int, tune: int, chains: int, random_seed, progressbar: bool, **kwargs
) -> tuple[Any, float, float, bool]:
    """Sample with nutpie through the engine (``spec``: the model ``binding`` was made from).

    Returns
    -------
    idata, compile_seconds, sampling_seconds, reused
        The posterior in the per-model layout; seconds to load (or compile) the family and to sample;
        whether the family's compiled code was reused (not compiled by this call: from the disk cache or
        an earlier fit in this process).
    """
    import nutpie

    start = time.perf_counter()
    family = load_family(binding.family)
    compiled = nutpie_model(
        binding, family, spec.model if isinstance(spec, BuiltMixedModel) else spec.pymc_model
    )
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idata = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, seed=random_seed, progress_bar=progressbar, **kwargs
    )
    sampling_seconds = time.perf_counter() - start
    idata["posterior"] = per_model_posterior(binding, spec, idata["posterior"].to_dataset())
    reused = binding.family in _SAMPLED or not family.compiled_now
    _SAMPLED.add(binding.family)
    return idata, compile_seconds, sampling_seconds, reused


def _module(spec):
    if isinstance(spec, BuiltMixedModel):
        # a Gaussian model is marginal over its clusters, unless it samples its random effects or has none
        return mixed if spec.family == "gaussian" and spec.method == "marginal" else glmm
    return latent if spec.method == "latent" else sem


def per_model_posterior(binding: Binding, spec, posterior: xr.Dataset) -> xr.Dataset:
    """The engine's draws as the per-model PyMC model names them."""
    if isinstance(spec, BuiltMixedModel):
        return _mixed_posterior(binding, spec, posterior)
    return _sem_posterior(binding, spec, posterior)


def _sem_posterior(binding: Binding, spec, posterior: xr.Dataset) -> xr.Dataset:
    """A SEM's variables, ``parameters`` and ``defined`` from the engine's draws (and a latent model's
    explicit variables of every unit)."""
    values = posterior["engine_values"].values
    rows = posterior["engine_derived"].values
    built, table, model = spec.built, spec.partable.table, spec.pymc_model
    shape = values.shape[:2]
    out = {}
    for name, dim, coords, positions in binding.variables:
        if dim is None:  # a latent model's z (units, disturbances)
            dims = model.named_vars_to_dims[name]
            out[name] = xr.DataArray(
                values[..., positions].reshape(*shape, *(len(model.coords[d]) for d in dims)),
                dims=("chain", "draw", *dims),
                coords={d: list(model.coords[d]) for d in dims},
            )
            continue
        out[name] = xr.DataArray(values[..., positions], dims=("chain", "draw", dim), coords={dim: coords})
    first_rows = [p.rows[0] for p in built.free]
    out["parameters"] = xr.DataArray(
        rows[..., first_rows],
        dims=("chain", "draw", "parameter"),
        coords={"parameter": [p.name for p in built.free]},
    )
    if built.defined:
        labels = {}
        for r, label in enumerate(table["label"]):
            if label and label not in labels:
                labels[label] = pt.as_tensor(rows[..., r])
        defined = []
        for statement in spec.partable.defined:
            labels[str(statement.lhs)] = evaluate(str(statement.rhs), labels)
            # evaluated once, by Python thunks: no machine code compiled for the draws' values
            value = labels[str(statement.lhs)].eval(mode=compile_mode("FAST_COMPILE"))
            defined.append(np.broadcast_to(value, rows.shape[:2]))
        out["defined"] = xr.DataArray(
            np.stack(defined, axis=-1),
            dims=("chain", "draw", "defined_parameter"),
            coords={"defined_parameter": built.defined},
        )
    cursor = len(table)
    for name in latent.explicit_deterministics(spec):  # level 2 first, as the family expands them
        dims = model.named_vars_to_dims[name]
        sizes = [len(model.coords[d]) for d in dims]
        out[name] = xr.DataArray(
            rows[..., cursor : cursor + sizes[0] * sizes[1]].reshape(*shape, *sizes),
            dims=("chain", "draw", *dims),
            coords={d: list(model.coords[d]) for d in dims},
        )
        cursor += sizes[0] * sizes[1]
    return xr.Dataset(out, coords={"chain": posterior.chain, "draw": posterior.draw}, attrs=posterior.attrs)


def _mixed_posterior(binding: Binding, spec, posterior: xr.Dataset) -> xr.Dataset:
    """A mixed model's free variables and deterministics from the engine's draws (Gaussian or GLMM)."""
    values = posterior["engine_values"].values
    derived = posterior["engine_derived"].values
    design, model = spec.design, spec.model
    marginal = binding.family in mixed.FAMILIES  # the effects as the likelihood's statistics
    shape = values.shape[:2]
    out = {}
    for name, dim, coords, positions in binding.variables:
        if name.startswith("corr_chol__"):
            continue
        dims = model.named_vars_to_dims.get(name, ())
        if len(dims) == 2:  # a GLMM's standardised effects (levels, effects)
            sizes = [len(model.coords[d]) for d in dims]
            out[name] = xr.DataArray(
                values[..., positions].reshape(*shape, *sizes),
                dims=("chain", "draw", *dims),
                coords={d: list(model.coords[d]) for d in dims},
            )
        elif dim is None and positions.size == 1:
            out[name] = xr.DataArray(values[..., positions[0]], dims=("chain", "draw"))
        elif dim is None:  # a vector without coordinates (MCMCglmm's G entries): PyMC's dimension name
            out[name] = xr.DataArray(values[..., positions], dims=("chain", "draw", f"{name}_dim_0"))
        else:
            out[name] = xr.DataArray(
                values[..., positions], dims=("chain", "draw", dim), coords={dim: coords}
            )
    p = len(design.fixed_names)
    if p:  # the per-model graph has no fixef without fixed effects
        out["fixef"] = xr.DataArray(
            derived[..., :p], dims=("chain", "draw", "term"), coords={"term": list(design.fixed_names)}
        )
    cursor = p
    # the residual SD, the negative binomial's size
    for name in glmm.RESPONSE_DETERMINISTICS.get(spec.family, ()):
        out[name] = xr.DataArray(derived[..., cursor], dims=("chain", "draw"))
        cursor += 1
    n_effects = sum(block.q for block in design.blocks)
    sd = derived[..., cursor : cursor + n_effects]
    cursor += n_effects
    factor = derived[..., cursor : cursor + n_effects**2].reshape(*shape, n_effects, n_effects)
    cursor += n_effects**2
    corr = derived[..., cursor : cursor + n_effects**2].reshape(*shape, n_effects, n_effects)
    cursor += n_effects**2
    # GLMM: every block's levels (none without random terms)
    effects = derived[..., cursor:].reshape(*shape, -1, n_effects) if n_effects else None
    # the blocks' effects side by side: Gaussian as the likelihood's statistics (nested: top grouping
    # factor first), a GLMM in formula order
    hierarchy = grouping_hierarchy(design) if marginal else None
    if hierarchy is not None:
        columns = [k for blocks in hierarchy.blocks for k in blocks]
    elif marginal:  # crossed: the factor integrated out cluster by cluster first, then the others
        columns = [k for part in crossed_split(design) for k in part]
    else:
        columns = list(range(len(design.blocks)))
    offset = level_offset = 0
    for k in columns:
        block, label = design.blocks[k], spec.labels[k]
        own = slice(offset, offset + block.q)
        dim = f"{label}__effect"
        out[f"sd__{label}"] = xr.DataArray(
            sd[..., own], dims=("chain", "draw", dim), coords={dim: list(block.names)}
        )
        if f"corr__{label}" in model.named_vars:
            dims = model.named_vars_to_dims[f"corr__{label}"]
            out[f"corr__{label}"] = xr.DataArray(
                corr[..., own, own],
                dims=("chain", "draw", *dims),
                coords={d: list(block.names) for d in dims},
            )
        if f"corr_chol__{label}" in model.named_vars:
            out[f"corr_chol__{label}"] = xr.DataArray(
                factor[..., own, own],
                dims=("chain", "draw", f"corr_chol__{label}_dim_0", f"corr_chol__{label}_dim_1"),
            )
        if f"u__{label}" in model.named_vars:
            dims = model.named_vars_to_dims[f"u__{label}"]
            out[f"u__{label}"] = xr.DataArray(
                effects[..., level_offset : level_offset + block.n_levels, own],
                dims=("chain", "draw", *dims),
                coords={d: list(model.coords[d]) for d in dims},
            )
            level_offset += block.n_levels
        offset += block.q
    return xr.Dataset(out, coords={"chain": posterior.chain, "draw": posterior.draw}, attrs=posterior.attrs)
