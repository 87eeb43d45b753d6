"""The Gaussian mixed-model engine family: random effects integrated out, the model's structure as data.

``mixed1`` serves every Gaussian mixed model with one grouping factor fitted marginally (lme4's
``y ~ x + (1 + x | g)``, ``(1 | g) + (0 + x | g)``, ``(x || g)``, any number of fixed effects and of
random effects per cluster), ``mixed2`` those with two nested grouping factors (``(1 | school/class)``,
``(1 + x | school) + (1 | class)`` with every class in one school), with the default priors or any prior
family given on the standardised scale or per term on the data scale;
``mixed_crossed`` those with crossed factors (the layout ``"crossed"`` of :mod:`pymlsem.mlm.stats`);
``mixed1_q1`` and ``mixed1_q2`` are ``mixed1`` for one or two effects per cluster (random intercepts, or
intercepts and one slope), with the per-cluster factorisation written out entry by entry. What
makes a model itself enters as arrays (:func:`bind`):

* the free parameters in sampling order, which take which prior family, and their hyperparameters
  (:mod:`pymlsem.engine.priors`); the correlation factors of the correlated blocks of two to four
  effects by size (PyMC's own ``LKJCorr`` density and transform, one batch per size);
* how each becomes a value on the data scale: a fixed effect ``offset + scale * t`` (the intercept
  ``mean(y) + sd(y) t``, a slope ``sd(y) / sd(x) t``, a term with its own prior ``t``), the residual SD
  and every random-effect SD ``scale * t ** power`` (``t`` the SD, its variance or its precision: the
  power 1, 1/2 or -1/2 of the prior's suffix);
* where each correlation factor's entries sit in the block-diagonal factor of the random effects'
  covariance (the effects of all blocks side by side, as :mod:`pymlsem.mlm.stats` orders them), the
  number of effects and of clusters of each grouping factor and the parent cluster of each cluster;
* the cross products of :func:`pymlsem.mlm.stats.gaussian_stats`.

The likelihood is :func:`pymlsem.mlm.loglik.gaussian_marginal_loglik` with the number of effects known
only at run time. The per-model PyMC graph (:func:`pymlsem.mlm.model.build_mixed_model`) stays the
specification: the engine's log-density equals its ``model.logp()`` at every point
(tests/engine/test_engine.py).
Every family is compiled from a hand-written kernel of the same inputs (``KERNELS``:
:mod:`pymlsem.engine.kernels.mixed1` for one grouping factor, :mod:`pymlsem.engine.kernels.coupled` for
nested and crossed ones; every prior family, correlated blocks of up to four effects), which compiles in
seconds instead of minutes; their graphs here stay what the kernels are tested against. MCMCglmm's G
priors on covariance matrices enter as their blocks' factors: an inverse-Wishart's Bartlett decomposition
(``iw<q>_*``: the positions of the chi-squared and normal values, the rows of the block, and ``iw_root``, the
Cholesky factor of ``(nu V)^-1``), a symmetric expansion's factor from its SDs and correlations with
``alpha`` integrated out (``gx<q>_*``: the positions of its log SDs and correlation values, and the rows;
``gx_prior``: ``nu``, ``nu V_ii`` and ``1 / alpha.V_ii``). More than two nested factors, MCMCglmm's
correlated ``B`` and asymmetric expansions are not families yet.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import CholeskyCorrTransform, ordered

from pymlsem.engine.binding import (
    PACKED_INPUTS,
    PACKED_REALS,
    Binding,
    Unsupported,
    base_family,
    pack,
    symbolic_inputs,
    unpack,
)
from pymlsem.engine.kernels import coupled, mixed1
from pymlsem.engine.kernels.effects import EFFECT_SEGMENTS, LKJ_SIZES, MAX_CORRELATED
from pymlsem.engine.priors import MAX_HYPER, PRIOR_FAMILIES, prior_logp, transform_of
from pymlsem.engine.starts import initial_point_function
from pymlsem.formula.design import INTERCEPT
from pymlsem.mlm.loglik import gaussian_marginal_loglik
from pymlsem.mlm.mcmcglmm_prior import (
    SdCorrelationFactor,
    bartlett_form,
    expanded_log_density,
    integrates_alpha,
    lower_inverse_entries,
)
from pymlsem.mlm.model import (
    SD_POWER,
    carrier_name,
    column_sd,
    data_scale,
    intercept_shift,
    safe_name,
    sd_power,
)
from pymlsem.mlm.stats import gaussian_stats
from pymlsem.priors import Prior, parse_prior

__all__ = [
    "DESCRIPTION",
    "EXPECTED_SECONDS",
    "FAMILIES",
    "GRAPH_SOURCES",
    "KERNELS",
    "KERNEL_SOURCES",
    "MCMCGLMM_AS_WRITTEN",
    "SHARED_KERNELS",
    "WARMUP_FAMILIES",
    "bind",
    "effect_arrays",
    "effect_values",
    "family_graph",
    "family_inputs",
]

#: family -> (grouping factors, each nested in the one above it; effects per cluster when the family is
#: specialised to that number, whose per-cluster factorisation is then written out entry by entry as in the
#: per-model graph, several times faster than a batch of LAPACK calls; None: known at run time)
_SHAPES = {
    "mixed1_q1": (1, 1),
    "mixed1_q2": (1, 2),
    "mixed1": (1, None),
    "mixed2": (2, None),
    "mixed_crossed": (0, None),  # crossed factors: one integrated out cluster by cluster, the others dense
}
#: compiled by ``python -m pymlsem warmup`` (the set-up script): the shapes of most models; the others are
#: compiled on first use, with a progress line (``warmup --all`` compiles every family)
WARMUP_FAMILIES = ("mixed1_q1", "mixed1_q2", "mixed1")
FAMILIES = tuple(_SHAPES)
#: the files besides the engine's own whose code shapes this module's graphs (the cache key)
GRAPH_SOURCES = ("engine/mixed.py", "mlm/loglik.py", "build/loglik.py")
EXPECTED_SECONDS = {"mixed1_q1": 30, "mixed1_q2": 30, "mixed1": 30, "mixed2": 30, "mixed_crossed": 30}
#: families compiled from a hand-written kernel instead of their graph: (logp with gradient, expanded values),
#: numba functions of the family's inputs (the graph stays the specification they are tested against); the
#: three one-factor families with the default priors compute the same thing, so one kernel serves them
KERNELS = {name: (mixed1.logp_grad, mixed1.expand) for name in ("mixed1_q1", "mixed1_q2", "mixed1")}
KERNELS["mixed2"] = (coupled.nested_logp_grad, coupled.nested_expand)
KERNELS["mixed_crossed"] = (coupled.crossed_logp_grad, coupled.crossed_expand)
#: the files whose code is each kernel (a family's cache key reads them besides ``GRAPH_SOURCES``)
KERNEL_SOURCES = dict.fromkeys(
    KERNELS,
    (
        "engine/kernels/priors.py",
        "engine/kernels/linalg.py",
        "engine/kernels/parts.py",
        "engine/kernels/effects.py",
        "engine/kernels/mixed1.py",
    ),
)
for _name in ("mixed2", "mixed_crossed"):
    KERNEL_SOURCES[_name] += ("engine/kernels/coupled.py",)
#: families whose compiled callbacks are another family's (the same kernel over the same inputs)
SHARED_KERNELS = {"mixed1_q1": "mixed1", "mixed1_q2": "mixed1"}
DESCRIPTION = {
    "mixed1_q1": "Gaussian random-intercept model",
    "mixed1_q2": "Gaussian mixed model with two effects per cluster",
    "mixed1": "Gaussian mixed model",
    "mixed2": "Gaussian mixed model with nested grouping factors",
    "mixed_crossed": "Gaussian mixed model with crossed grouping factors",
}
#: variables under PyMC's ordered transform (the ordinal GLMM's cut-points), which the family's graph applies
#: before their prior (:mod:`pymlsem.engine.glmm`); every other element takes its prior family's transform
ORDERED_VARIABLES = ("cutpoints",)
#: the prior of the standardised random effects of the latent (GLMM) graph
STANDARD_NORMAL = parse_prior("normal(0,1)")
_STATS = (("yy", 1), ("xy", 1), ("xx", 2), ("zz", 3), ("zy", 2), ("zx", 3), ("nobs", 1))
#: why a model with MCMCglmm-style priors that are not single parameters' compiles its own graph
MCMCGLMM_AS_WRITTEN = (
    "MCMCglmm-style correlated fixed effects or an asymmetric parameter expansion (not an engine family yet)"
)
#: the crossed layout's products with the other factors' columns
_CROSSED_STATS = (("cross", 3), ("rest_zz", 2), ("rest_zy", 1), ("rest_zx", 2))
_REALS = mixed1.REALS  # the effects' reals (EFFECT_REALS), then the residual SD's


def _segments(family: str) -> tuple[str, ...]:
    """Names of the integer arrays packed into ``ints``, in order."""
    names = [f"prior_{name}" for name in PRIOR_FAMILIES]
    names += [*EFFECT_SEGMENTS, "sigma_param"]
    names += ["level_effects", "level_sizes"]  # per grouping factor, the top one first
    names += [f"parent{level}" for level in range(1, _SHAPES[base_family(family)][0])]
    if _SHAPES[base_family(family)][0] == 0:  # crossed: where each entry of the others' factor comes from
        names.append("rest_source")
    return tuple(names)


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    return (
        *PACKED_INPUTS,
        *PACKED_REALS,
        *((name, "float64", ndim) for name, ndim in _STATS),
        *((name, "float64", ndim) for name, ndim in _CROSSED_STATS if _SHAPES[base_family(family)][0] == 0),
    )


def effect_values(x, hyper, positions, part, real) -> tuple[pt.TensorVariable, ...]:
    """The prior density and the values of a mixed model's parameters (the data of :func:`effect_arrays`).

    Returns
    -------
    log_prior, values, fixef, sd, corr_factor
        The joint prior log-density (with Jacobians, LKJ factors included), the K constrained values, the
        fixed effects, the random-effect SDs (Q) and the block-diagonal correlation factor (Q x Q).
    """
    log_prior, values = prior_logp(x, hyper, positions)
    n_effects = real["sd_scale"].shape[0]
    corr_factor = pt.eye(n_effects).reshape((-1,))
    for q in LKJ_SIZES:  # the correlated blocks of q effects: PyMC's LKJCorr density at its transform
        free = x[part[f"lkj{q}_param"]].reshape((-1, q * (q - 1) // 2))
        transform = CholeskyCorrTransform(n=q, upper=False)
        factor = transform.backward(free)
        density = pm.logp(pm.LKJCorr.dist(n=q, eta=real["lkj_eta"][0]), factor)
        log_prior = log_prior + pt.sum(density + transform.log_jac_det(free))
        corr_factor = pt.set_subtensor(corr_factor[part[f"lkj{q}_place"]], factor.reshape((-1,)))
    fixef = real["fixef_offset"] + real["fixef_scale"] * values[part["fixef_param"]]
    fixef = fixef - real["fixef_intercept"] * pt.dot(real["fixef_shift"], fixef)  # see intercept_shift
    sd = real["sd_scale"] * values[part["sd_param"]] ** real["sd_power"]
    cursor = 0
    for q in LKJ_SIZES:  # MCMCglmm's inverse-Wishart G entries: their rows of L by the Bartlett decomposition
        rows = part[f"iw{q}_rows"].reshape((-1, q))
        blocks = rows.shape[0]
        root = real["iw_root"][cursor : cursor + blocks * q * q].reshape((blocks, q, q))
        cursor = cursor + blocks * q * q
        sd, corr_factor = _with_rows(sd, corr_factor, rows, _bartlett_root(values, part, q, root), n_effects)
    cursor = 0
    for q in LKJ_SIZES:  # symmetric expansions: L itself, alpha integrated out
        rows = part[f"gx{q}_rows"].reshape((-1, q))
        blocks = rows.shape[0]
        hyper_gx = real["gx_prior"][cursor : cursor + blocks * (1 + 2 * q)].reshape((blocks, 1 + 2 * q))
        cursor = cursor + blocks * (1 + 2 * q)
        params = part[f"gx{q}_param"].reshape((-1, q * (q + 1) // 2))
        transform = SdCorrelationFactor(q)
        factor = pt.specify_shape(transform.factor(x[params]), (None, q, q))
        density = expanded_log_density(factor, hyper_gx[:, 0], hyper_gx[:, 1 : 1 + q], hyper_gx[:, 1 + q :])
        log_prior = log_prior + pt.sum(density + transform.log_jac_det(x[params]))
        values = pt.set_subtensor(values[params.reshape((-1,))], transform.backward(x[params]).reshape((-1,)))
        sd, corr_factor = _with_rows(sd, corr_factor, rows, factor, n_effects)
    corr_factor = corr_factor.reshape((n_effects, n_effects))
    return log_prior, values, fixef, sd, corr_factor


def _with_rows(sd, corr_factor, rows, factor, n_effects: int) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The SDs (the lengths of the factors' rows) and the correlation factor (flat; the rows scaled to unit
    length) with the G blocks' rows (``rows``: blocks x q) set from their factors (blocks x q x q)."""
    length = pt.sqrt(pt.sum(factor**2, axis=2))
    sd = pt.set_subtensor(sd[rows.reshape((-1,))], length.reshape((-1,)))
    places = (rows[:, :, None] * n_effects + rows[:, None, :]).reshape((-1,))
    corr_factor = pt.set_subtensor(corr_factor[places], (factor / length[:, :, None]).reshape((-1,)))
    return sd, corr_factor


def _bartlett_root(values, part, q: int, root) -> pt.TensorVariable:
    """The factors ``(C A)^-T`` of the inverse-Wishart G blocks of size q (blocks x q x q) as
    :func:`pymlsem.mlm.mcmcglmm_prior.block_root` draws them: ``root`` their ``C``, ``A`` lower triangular
    with the square roots of the chi-squared values on its diagonal and the normal values below it;
    ``(C A)^-1`` by forward substitution, entry by entry (:func:`lower_inverse_entries`)."""
    chi2 = values[part[f"iw{q}_chi2"].reshape((-1, q))]
    below = values[part[f"iw{q}_z"].reshape((-1, q * (q - 1) // 2))]
    bartlett = [[None] * q for _ in range(q)]
    k = 0
    for i in range(q):
        bartlett[i][i] = pt.sqrt(chi2[:, i])
        for j in range(i):
            bartlett[i][j] = below[:, k]
            k += 1
    product = [
        [sum(root[:, i, t] * bartlett[t][j] for t in range(j, i + 1)) for j in range(i + 1)] for i in range(q)
    ]
    inverse = lower_inverse_entries(product)
    return pt.stack([pt.stack([inverse[j][i] for j in range(q)], axis=1) for i in range(q)], axis=1)


def family_graph(
    family: str,
) -> tuple[pt.TensorVariable, list[pt.TensorVariable], pt.TensorVariable, pt.TensorVariable]:
    """The family's symbolic log-density.

    Returns
    -------
    x, inputs, logp, expanded
        The unconstrained point (K,), the data inputs (as :func:`family_inputs`), the scalar log-density
        and the expanded values: the K constrained values, then the fixed effects (p), the residual SD,
        the random-effect SDs (Q), the block-diagonal correlation factor (Q x Q, row by row) and the
        correlation matrix it gives (Q x Q).
    """
    x, inputs, data = symbolic_inputs(family_inputs(family))
    part = unpack(data["ints"], data["offsets"], _segments(family))
    real = unpack(data["reals"], data["real_offsets"], _REALS)

    positions = {name: part[f"prior_{name}"] for name in PRIOR_FAMILIES}
    log_prior, values, fixef, sd, corr_factor = effect_values(x, data["hyper"], positions, part, real)
    sigma = real["sigma_scale"][0] * values[part["sigma_param"][0]] ** real["sigma_power"][0]
    factors, effects = _SHAPES[base_family(family)]
    factor = sd[:, None] * corr_factor  # of all effects, block diagonal
    if factors == 0:  # crossed: the own factor's effects first, then every other block's effects
        own = part["level_effects"][0]
        rest = pt.concatenate([pt.zeros(1), factor.reshape((-1,))])[part["rest_source"]]
        stats = SimpleNamespace(
            **{name: data[name] for name, _ in (*_STATS, *_CROSSED_STATS)},
            layout="crossed",
            hierarchical=False,
            level_effects=(own,),
            rest_lambda=rest.reshape((data["rest_zy"].shape[0], -1)),
        )
        factor = factor[:own, :own]
    else:
        stats = SimpleNamespace(
            **{name: data[name] for name, _ in _STATS},
            layout="clustered" if factors == 1 else "nested",
            hierarchical=True,
            level_effects=(effects,) if effects else tuple(part["level_effects"][i] for i in range(factors)),
            level_sizes=tuple(part["level_sizes"][level] for level in range(factors)),
            parents=tuple(part[f"parent{level}"] for level in range(1, factors)),
        )
    stats.n_fixed = True  # p may be 0: the products with an empty beta are zero
    stats.sizes, stats.columns = ((None, None),), (0,)
    stats.yy, stats.nobs = stats.yy[0], stats.nobs[0]
    loglik = gaussian_marginal_loglik(stats, fixef, sigma, chols=[factor])
    corr = pt.dot(corr_factor, corr_factor.T)
    expanded = pt.concatenate(
        [values, fixef, sigma[None], sd, corr_factor.reshape((-1,)), corr.reshape((-1,))]
    )
    return x, inputs, log_prior + loglik, expanded


def _prior_of(name: str, spec) -> Prior | float:
    """The prior (or LKJ ``eta``) of a per-model variable, from the names ``build_mixed_model`` gives."""
    priors = spec.priors
    by_name = {"intercept_std": "intercept", "fixef_std": "fixef", "sigma_std": "sigma", "nu": "nu"}
    by_name |= {"overdispersion_std": "overdispersion", "cutpoints": "cutpoints"}
    by_name |= {f"fixef__{safe_name(term)}": f"fixef:{term}" for term in spec.design.fixed_names}
    for scale in SD_POWER:  # an SD, or its variance or precision, carries the SD's prior
        by_name[carrier_name("sigma_std", scale)] = "sigma"
    for label in spec.labels:
        by_name[f"corr_chol__{label}"] = "lkj_eta"
        for scale in SD_POWER:
            by_name[carrier_name(f"sd_std__{label}", scale)] = "sd"
            by_name[carrier_name(f"sd__{label}", scale)] = f"sd:{label}"
        if name == f"z__{label}":  # a GLMM's standardised random effects
            return STANDARD_NORMAL
    if name not in by_name or by_name[name] not in priors:
        raise Unsupported(f"the variable {name} (MCMCglmm-style priors are not an engine family yet)")
    return priors[by_name[name]]


def effect_arrays(spec, columns, center: float, scale: float) -> tuple:
    """A mixed model's parameters as data: what :func:`effect_values` reads.

    Parameters
    ----------
    spec
        The built :class:`pymlsem.mlm.model.BuiltMixedModel` (Gaussian, or a GLMM on the link scale).
    columns
        The blocks in the order their effects sit side by side.
    center, scale
        The intercept is ``center + scale * t`` and a slope ``scale / sd(x) * t`` (Gaussian: the mean and
        SD of y; a GLMM: the link of the pooled mean response and 1).

    Returns
    -------
    variables, hyper, family_of, parts, reals
        The per-model variables in sampling order (name, dimension or None, coordinates, positions), the
        hyperparameters of the generic elements, each element's prior family ("" for LKJ factors), and
        the integer and real arrays by name (fixed effects, SDs, LKJ positions and places).

    Raises
    ------
    Unsupported
        A prior the families do not express, or a correlated block of more than :data:`MAX_CORRELATED`.
    """
    design, model = spec.design, spec.model
    start = initial_point_function(model)(None)  # the values' sizes
    variables, elements = [], []  # elements: (prior, k) of the generic parameters
    lkj: dict[str, np.ndarray] = {}  # positions of each correlated block's factor
    covariance = _covariance_priors(spec)
    position = 0
    for value_var in model.value_vars:
        rv = model.values_to_rvs[value_var]
        size = start[value_var.name].size
        priors = covariance[rv.name] if rv.name in covariance else [_prior_of(rv.name, spec)] * size
        dims = model.named_vars_to_dims.get(rv.name)
        coords = list(model.coords[dims[0]]) if dims else []
        variables.append((rv.name, dims[0] if dims else None, coords, np.arange(position, position + size)))
        if rv.name.startswith("corr_chol__"):
            lkj[rv.name.removeprefix("corr_chol__")] = np.arange(position, position + size)
        elif rv.name in covariance and not covariance[rv.name]:  # a G factor, alpha integrated out
            if type(model.rvs_to_transforms.get(rv)) is not SdCorrelationFactor:
                raise Unsupported(f"the transform of {rv.name}")
        else:
            prior = priors[0]
            expected = ordered if rv.name in ORDERED_VARIABLES else transform_of(prior.family, prior.args)
            actual = model.rvs_to_transforms.get(rv)
            if prior.family not in PRIOR_FAMILIES or type(actual) is not type(expected):
                raise Unsupported(f"the prior family or transform of {rv.name}")
            elements += [(priors[i], position + i) for i in range(size)]
        position += size
    positions = {v[0]: v[3] for v in variables}

    hyper = np.zeros((position, MAX_HYPER))
    family_of = np.full(position, "", dtype=object)
    for prior, k in elements:
        hyper[k, : len(prior.args)] = prior.args
        family_of[k] = prior.family
    x_sd = column_sd(design.x)
    fixef = []  # per term: (position, offset, scale) of ``offset + scale * t``
    slopes = iter(positions.get("fixef_std", []))
    for t, term in enumerate(design.fixed_names):
        own = f"fixef__{safe_name(term)}"
        if own in positions:  # the term's own prior, on the data scale
            fixef.append((positions[own][0], 0.0, 1.0))
        elif term == INTERCEPT:
            fixef.append((positions["intercept_std"][0], center, scale))
        else:
            fixef.append((next(slopes), 0.0, scale / x_sd[t]))
    fixef_table = np.array(fixef, dtype=float).reshape(-1, 3)

    sd_param, sd_scale, sd_powers = [], [], []
    places: dict[int, list[np.ndarray]] = {q: [] for q in LKJ_SIZES}
    params: dict[int, list[np.ndarray]] = {q: [] for q in LKJ_SIZES}
    bartlett: dict[str, list[np.ndarray]] = {
        f"{kind}{q}_{what}": []
        for kind, whats in (("iw", ("chi2", "z", "rows")), ("gx", ("param", "rows")))
        for what in whats
        for q in LKJ_SIZES
    }
    roots: dict[int, list[np.ndarray]] = {q: [] for q in LKJ_SIZES}
    hyper_gx: dict[int, list[np.ndarray]] = {q: [] for q in LKJ_SIZES}
    n_effects = sum(design.blocks[k].q for k in columns)
    offset = 0
    for k in columns:
        block, label = design.blocks[k], spec.labels[k]
        entry = spec.mcmcglmm_prior.g[k] if spec.mcmcglmm_prior is not None else None
        if entry is not None:  # an MCMCglmm G entry: the block's SDs and correlations from its factor
            q = block.q
            if q > MAX_CORRELATED:
                raise Unsupported(f"an MCMCglmm G entry on {q} effects (up to {MAX_CORRELATED} are data)")
            first = positions[f"G_{label}_chol" if integrates_alpha(entry) else f"G_{label}_chi2"][0]
            sd_param += [first] * q  # the scale 0: L's rows set the SDs (kernels/effects.py)
            sd_scale += [0.0] * q
            sd_powers += [1.0] * q
            if integrates_alpha(entry):
                bartlett[f"gx{q}_param"].append(positions[f"G_{label}_chol"])
                bartlett[f"gx{q}_rows"].append(offset + np.arange(q))
                psi = entry.nu * np.diag(entry.v)
                hyper_gx[q].append(np.concatenate([[entry.nu], psi, 1.0 / np.diag(entry.alpha_v)]))
            else:
                bartlett[f"iw{q}_chi2"].append(positions[f"G_{label}_chi2"])
                bartlett[f"iw{q}_z"].append(positions[f"G_{label}_z"])
                bartlett[f"iw{q}_rows"].append(offset + np.arange(q))
                roots[q].append(np.linalg.cholesky(np.linalg.inv(entry.nu * entry.v)).ravel())
            offset += q
            continue
        own = f"sd:{label}" in spec.priors  # the block's own prior, on the data scale
        prior = spec.priors[f"sd:{label}" if own else "sd"]
        sd_param += list(positions[carrier_name(f"sd__{label}" if own else f"sd_std__{label}", prior.scale)])
        sd_powers += [sd_power(prior)] * block.q
        if own:
            sd_scale += [1.0] * block.q
        else:
            is_intercept = np.array([name == INTERCEPT for name in block.names])
            sd_scale += list(np.where(is_intercept, scale, scale / column_sd(block.z)))
        if label in lkj:
            if block.q > MAX_CORRELATED:
                raise Unsupported(
                    f"a correlated block of {block.q} effects (up to {MAX_CORRELATED} are data)"
                )
            rows = offset + np.arange(block.q)
            places[block.q].append((rows[:, None] * n_effects + rows[None, :]).ravel())
            params[block.q].append(lkj[label])
        offset += block.q
    parts = {"fixef_param": fixef_table[:, 0], "sd_param": np.asarray(sd_param)}
    for q in LKJ_SIZES:
        parts[f"lkj{q}_param"] = np.concatenate([np.zeros(0), *params[q]])
        parts[f"lkj{q}_place"] = np.concatenate([np.zeros(0), *places[q]])
    parts |= {name: np.concatenate([np.zeros(0), *arrays]) for name, arrays in bartlett.items()}
    shift, is_intercept = intercept_shift(design, spec.priors)
    reals = {
        "fixef_offset": fixef_table[:, 1],
        "fixef_scale": fixef_table[:, 2],
        "fixef_shift": shift,
        "fixef_intercept": is_intercept,
        "sd_scale": np.asarray(sd_scale, dtype=float),
        "lkj_eta": np.array([float(spec.priors["lkj_eta"])]),  # one eta for every correlated block
        "sd_power": np.asarray(sd_powers, dtype=float),
        "iw_root": np.concatenate([np.zeros(0), *(root for q in LKJ_SIZES for root in roots[q])]),
        "gx_prior": np.concatenate([np.zeros(0), *(h for q in LKJ_SIZES for h in hyper_gx[q])]),
    }
    return variables, hyper, family_of, parts, reals


def _covariance_priors(spec) -> dict[str, list[Prior]]:
    """The element priors of the variables of MCMCglmm's G entries (:func:`pymlsem.mlm.mcmcglmm_prior.
    block_root`): an inverse-Wishart's ``G_<label>_chi2`` (chi-squared with ``nu - i`` degrees of freedom:
    ``gamma((nu - i) / 2, 1 / 2)``) and ``G_<label>_z`` (standard normal); a symmetric expansion's factor
    ``G_<label>_chol`` has none (an empty list: the block's density is the kernels' own).

    Raises
    ------
    Unsupported
        Correlated fixed effects (``B``) or an asymmetric expansion, sampled as written.
    """
    prior = spec.mcmcglmm_prior
    if prior is None:
        return {}
    engine_form = all(entry is None or bartlett_form(entry) or integrates_alpha(entry) for entry in prior.g)
    if prior.b is not None or not engine_form:
        raise Unsupported(MCMCGLMM_AS_WRITTEN)
    priors: dict[str, list[Prior]] = {}
    for entry, label in zip(prior.g, spec.labels, strict=True):
        if entry is None:
            continue
        q = entry.q
        if integrates_alpha(entry):
            priors[f"G_{label}_chol"] = []
            continue
        priors[f"G_{label}_chi2"] = [Prior("gamma", ((entry.nu - i) / 2, 0.5)) for i in range(q)]
        priors[f"G_{label}_z"] = [STANDARD_NORMAL] * (q * (q - 1) // 2)
    return priors


def bind(spec) -> Binding:
    """The arrays that make ``spec`` (a built :class:`pymlsem.mlm.model.BuiltMixedModel`) a ``mixed`` model.

    Raises
    ------
    Unsupported
        When the model needs something the family does not express as data (the message says what).
    """
    design = spec.design
    if spec.family != "gaussian":
        raise Unsupported(f"the {spec.family} family (GLMMs are not an engine family yet)")
    served = ("(Woodbury per cluster)", "(nested Woodbury)", "(crossed factors, partial Woodbury)")
    if spec.method != "marginal" or not spec.likelihood.endswith(served):
        raise Unsupported(f"the likelihood {spec.likelihood!r} (not an engine family yet)")
    y_mean, y_sd = data_scale(design.y)
    stats = gaussian_stats(design)
    crossed = stats.layout == "crossed"
    factors = len(stats.level_effects)
    if factors > 2:
        raise Unsupported(f"{factors} nested grouping factors (up to 2 are engine families)")
    columns = (*stats.columns, *stats.rest)  # crossed: the own factor's blocks, then the others'
    variables, hyper, family_of, parts, reals = effect_arrays(spec, columns, y_mean, y_sd)
    n_effects = reals["sd_scale"].size
    family = "mixed_crossed" if crossed else f"mixed{factors}"
    if factors == 1 and n_effects <= 2 and not crossed:
        family += f"_q{n_effects}"
    positions = {v[0]: v[3] for v in variables}
    parts |= {f"prior_{name}": np.flatnonzero(family_of == name) for name in PRIOR_FAMILIES}
    parts["sigma_param"] = positions[carrier_name("sigma_std", spec.priors["sigma"].scale)][:1]
    parts["level_effects"] = np.asarray(stats.level_effects)
    parts["level_sizes"] = np.asarray(stats.level_sizes if not crossed else stats.level_sizes[:1])
    if crossed:
        parts["rest_source"] = _rest_source(design, stats, n_effects)
    parts |= {f"parent{level}": np.asarray(parent) for level, parent in enumerate(stats.parents, start=1)}
    reals["sigma_scale"] = np.array([y_sd])
    reals["sigma_power"] = np.array([sd_power(spec.priors["sigma"])])
    ints, offsets = pack(parts, _segments(family), "int64")
    real_values, real_offsets = pack(reals, _REALS, "float64")
    data = {
        "hyper": hyper,
        "ints": ints,
        "offsets": offsets,
        "reals": real_values,
        "real_offsets": real_offsets,
        "yy": np.array([stats.yy], dtype=float),
        "xy": np.asarray(stats.xy, dtype=float),
        "xx": np.asarray(stats.xx, dtype=float).reshape((len(design.fixed_names),) * 2),
        "zz": np.asarray(stats.zz, dtype=float),
        "zy": np.asarray(stats.zy, dtype=float),
        "zx": np.asarray(stats.zx, dtype=float),
        "nobs": np.array([float(stats.nobs)]),
    }
    if crossed:
        data |= {name: np.asarray(getattr(stats, name), dtype=float) for name, _ in _CROSSED_STATS}
        data["rest_zx"] = data["rest_zx"].reshape(data["rest_zy"].size, len(design.fixed_names))
        data["cross"] = data["cross"].reshape(*data["zy"].shape, data["rest_zy"].size)
    n_derived = len(design.fixed_names) + 1 + n_effects + 2 * n_effects**2
    return Binding(family, data, variables, n_derived)


def _rest_source(design, stats, n_effects: int) -> np.ndarray:
    """Crossed layout: for every entry of the other factors' covariance factor (Q_r x Q_r, block by block,
    level by level, as :mod:`pymlsem.mlm.stats` orders their columns), 0 for a structural zero or 1 plus
    its place in the factor of all effects (``n_effects`` square, the own factor's blocks first)."""
    q_r = stats.rest_zy.shape[0]
    source = np.zeros((q_r, q_r), dtype=np.int64)
    effect = sum(design.blocks[k].q for k in stats.columns)  # the rest blocks' effects follow the own ones
    column = 0
    for k in stats.rest:
        block = design.blocks[k]
        q = block.q
        inner = 1 + (effect + np.arange(q))[:, None] * n_effects + (effect + np.arange(q))[None, :]
        for level in range(block.n_levels):
            at = column + level * q
            source[at : at + q, at : at + q] = inner
        column += block.n_levels * q
        effect += q
    return source.ravel()
