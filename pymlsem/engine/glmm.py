"""The GLMM engine families: binomial, Poisson, negative binomial, Student-t, ordinal and Gaussian mixed
models with explicit random effects, as data.

``glmm_binomial_logit``, ``glmm_binomial_probit`` (bernoulli and binomial responses: a bernoulli row is a
binomial one of one trial, with the same density), ``glmm_poisson``, ``glmm_negbinomial``,
``glmm_student``, ``glmm_ordinal_logit`` and ``glmm_ordinal_probit`` serve the non-Gaussian mixed models
of :func:`pymlsem.mlm.glmm.build_glmm_model`, and ``glmm_gaussian`` the Gaussian models of
:func:`pymlsem.mlm.model.build_mixed_model` that sample their random effects (``method="latent"``, chosen
for large crossed designs) or have none (a formula without random terms), with any grouping factors (one,
nested or crossed: the random effects are sampled, so how the factors relate does not matter), any number
of blocks and effects, and offsets; with any prior family and correlated blocks of up to two effects.
The parameters are laid out as for Gaussian mixed models (:func:`pymlsem.engine.mixed.effect_arrays`, on
the link scale), and the random effects as:

* the standardised effects ``z`` of every block (standard normal elements of the point) and where each
  sits in one matrix with a row per level of every block and a column per effect of every block, whose
  product with the block-diagonal covariance factor gives every block's effects ``u = z L'`` at once;
* for every row and effect, the row of that matrix (the row's level of the effect's block), the random
  design ``Z`` and the fixed design ``X``, the response, the trials and the offset;
* the response family's own parameters (:data:`RESPONSE_PARAMETERS`: the negative binomial's
  ``overdispersion_std``, the Student-t's ``sigma_std`` and ``nu``, the ordinal model's ``cutpoints``, as
  many as the response has categories less one) by their positions in the point, and the unit of the
  Student-t's residual SD (the SD of y, as for a Gaussian model) with the power of its variable that is
  the SD (1, or 1/2 and -1/2 for a prior on the variance or the precision).

The ordinal model's cut-points are PyMC's ordered transform of their elements of the point (its log-Jacobian
added), evaluated under their prior like any other element.
The per-model PyMC graph stays the specification: the engine's log-density equals its ``model.logp()``
(tests/engine/test_engine.py). The families are compiled from one hand-written kernel of the same inputs
(:mod:`pymlsem.engine.kernels.glmm`, ``KERNELS``; the response is the data's ``response_code``), which
compiles in seconds instead of a minute or two per family; their graphs here stay what the kernel is tested
against. MCMCglmm-style priors compile their own graph.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import ordered

from pymlsem.engine.binding import (
    PACKED_INPUTS,
    PACKED_REALS,
    Binding,
    Unsupported,
    pack,
    symbolic_inputs,
    unpack,
)
from pymlsem.engine.kernels import glmm as kernel
from pymlsem.engine.kernels.effects import EFFECT_REALS, EFFECT_SEGMENTS
from pymlsem.engine.mixed import (
    effect_arrays,
    effect_values,
)
from pymlsem.engine.priors import PRIOR_FAMILIES
from pymlsem.mlm.glmm import response_scale
from pymlsem.mlm.model import carrier_name, data_scale, sd_power

__all__ = [
    "DESCRIPTION",
    "EXPECTED_SECONDS",
    "FAMILIES",
    "GRAPH_SOURCES",
    "KERNELS",
    "KERNEL_SOURCES",
    "RESPONSE_DETERMINISTICS",
    "RESPONSE_PARAMETERS",
    "SHARED_KERNELS",
    "WARMUP_FAMILIES",
    "bind",
    "family_graph",
    "family_inputs",
]

#: PyTensor rewrites the GLMM graphs are compiled without: with elementwise fusion, the numba backend gave a
#: wrong gradient for the correlation parameter of ``yb ~ x1 + (1 + x1 | g)``
#: (tests/engine/test_engine.py; log prior and likelihood each right alone, their sum's gradient off by 2.8),
#: PyTensor 3.3.8, numba 0.68
COMPILE_EXCLUDING = ("fusion",)
#: family -> (response family of the per-model graph, link)
_LIKELIHOODS = {
    "glmm_binomial_logit": ("binomial", "logit"),
    "glmm_binomial_probit": ("binomial", "probit"),
    "glmm_poisson": ("poisson", "log"),
    "glmm_negbinomial": ("negbinomial", "log"),
    "glmm_student": ("student", "identity"),
    "glmm_ordinal_logit": ("ordinal", "logit"),
    "glmm_ordinal_probit": ("ordinal", "probit"),
    "glmm_gaussian": ("gaussian", "identity"),
}
#: response family -> its own parameters in the per-model graph, in the order the family's graph reads them
RESPONSE_PARAMETERS = {
    "negbinomial": ("overdispersion_std",),
    "student": ("sigma_std", "nu"),
    "ordinal": ("cutpoints",),
    "gaussian": ("sigma_std",),
}
#: response family -> its deterministics in the per-model graph, expanded after the fixed effects
RESPONSE_DETERMINISTICS = {"negbinomial": ("theta",), "student": ("sigma",), "gaussian": ("sigma",)}
#: compiled by ``python -m pymlsem warmup``: the default priors' families, one kernel compiled once for all
WARMUP_FAMILIES = kernel.SERVED
FAMILIES = tuple(_LIKELIHOODS)
#: the files besides the engine's own whose code shapes this module's graphs (the cache key)
GRAPH_SOURCES = ("engine/glmm.py", "engine/mixed.py", "mlm/loglik.py", "build/loglik.py")
#: the families are one kernel
EXPECTED_SECONDS = dict.fromkeys(kernel.SERVED, 30)
#: families compiled from a hand-written kernel instead of their graph: (logp with gradient, expanded values),
#: numba functions of the family's inputs (the graph stays the specification they are tested against); the
#: response is data (``response_code``: the family's place in ``_LIKELIHOODS``), so one kernel serves them
KERNELS = dict.fromkeys(kernel.SERVED, (kernel.logp_grad, kernel.expand))
#: the files whose code is each kernel (a family's cache key reads them besides ``GRAPH_SOURCES``)
KERNEL_SOURCES = dict.fromkeys(
    KERNELS,
    (
        "engine/kernels/priors.py",
        "engine/kernels/parts.py",
        "engine/kernels/effects.py",
        "engine/kernels/glmm.py",
    ),
)
#: families whose compiled callbacks are another family's (the same kernel over the same inputs)
SHARED_KERNELS = {family: kernel.SERVED[0] for family in kernel.SERVED[1:]}
DESCRIPTION = {
    "glmm_binomial_logit": "logistic mixed model",
    "glmm_binomial_probit": "probit mixed model",
    "glmm_poisson": "Poisson mixed model",
    "glmm_negbinomial": "negative binomial mixed model",
    "glmm_student": "Student-t mixed model",
    "glmm_ordinal_logit": "ordinal (cumulative logit) mixed model",
    "glmm_ordinal_probit": "ordinal (cumulative probit) mixed model",
    "glmm_gaussian": "Gaussian mixed model with sampled random effects",
}
_REALS = (*EFFECT_REALS, "response_unit", "response_power")
_ROWS = (("x", "float64", 2), ("z_design", "float64", 2), ("row_levels", "int64", 2))
_RESPONSE = ("y", "trials", "offset")


def _segments(family: str) -> tuple[str, ...]:
    names = [f"prior_{name}" for name in PRIOR_FAMILIES]
    return (*names, *EFFECT_SEGMENTS, "z_param", "z_place", "n_levels", "response_param", "response_code")


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    return (
        *PACKED_INPUTS,
        *PACKED_REALS,
        *_ROWS,
        *((name, "float64", 1) for name in _RESPONSE),
    )


def family_graph(
    family: str,
) -> tuple[pt.TensorVariable, list[pt.TensorVariable], pt.TensorVariable, pt.TensorVariable]:
    """The family's symbolic log-density.

    Returns
    -------
    x, inputs, logp, expanded
        The unconstrained point (K,), the data inputs (as :func:`family_inputs`), the scalar log-density
        and the expanded values: the K constrained values, the fixed effects (p), the response family's
        deterministics (:data:`RESPONSE_DETERMINISTICS`), the random-effect SDs (Q),
        the block-diagonal correlation factor and the correlation matrix (Q x Q each, row by row), and the
        effects of every level (levels of all blocks x Q, row by row).
    """
    x, inputs, data = symbolic_inputs(family_inputs(family))
    part = unpack(data["ints"], data["offsets"], _segments(family))
    real = unpack(data["reals"], data["real_offsets"], _REALS)
    positions = {name: part[f"prior_{name}"] for name in PRIOR_FAMILIES}
    response, link = _LIKELIHOODS[family]
    point, jacobian = x, 0.0
    if response == "ordinal":  # the cut-points' elements of the point, ordered before their prior
        free = x[part["response_param"]]
        point = pt.set_subtensor(x[part["response_param"]], ordered.backward(free))
        jacobian = ordered.log_jac_det(free)
    log_prior, values, fixef, sd, corr_factor = effect_values(point, data["hyper"], positions, part, real)
    log_prior = log_prior + jacobian
    n_effects = sd.shape[0]
    standardised = pt.zeros(part["n_levels"][0] * n_effects)
    standardised = pt.set_subtensor(standardised[part["z_place"]], values[part["z_param"]])
    effects = pt.dot(
        standardised.reshape((part["n_levels"][0], n_effects)), (sd[:, None] * corr_factor).T
    )  # u = z L'
    random = pt.sum(data["z_design"] * effects[data["row_levels"], pt.arange(n_effects)[None, :]], axis=1)
    eta = data["offset"] + pt.dot(data["x"], fixef) + random
    own = values[part["response_param"]]  # the response family's parameters (RESPONSE_PARAMETERS)
    deterministics = []
    if response == "poisson":
        distribution = pm.Poisson.dist(mu=pt.exp(eta))
    elif response == "negbinomial":
        theta = 1.0 / pt.sqr(own[0])
        distribution = pm.NegativeBinomial.dist(mu=pt.exp(eta), alpha=theta)
        deterministics.append(theta)
    elif response in ("student", "gaussian"):
        sigma = real["response_unit"][0] * own[0] ** real["response_power"][0]
        if response == "student":
            distribution = pm.StudentT.dist(nu=own[1], mu=eta, sigma=sigma)
        else:
            distribution = pm.Normal.dist(mu=eta, sigma=sigma)
        deterministics.append(sigma)
    elif response == "ordinal":
        kind = pm.OrderedLogistic if link == "logit" else pm.OrderedProbit
        distribution = kind.dist(eta=eta, cutpoints=own, compute_p=False)
    elif link == "logit":
        distribution = pm.Binomial.dist(n=data["trials"], logit_p=eta)
    else:
        distribution = pm.Binomial.dist(n=data["trials"], p=pm.math.invprobit(eta))
    y = pt.cast(data["y"], "int64") if response == "ordinal" else data["y"]  # ordinal: category codes
    loglik = pt.sum(pm.logp(distribution, y))
    corr = pt.dot(corr_factor, corr_factor.T)
    expanded = pt.concatenate(
        [
            values,
            fixef,
            *(pt.atleast_1d(value) for value in deterministics),
            sd,
            corr_factor.reshape((-1,)),
            corr.reshape((-1,)),
            effects.reshape((-1,)),
        ]
    )
    return x, inputs, log_prior + loglik, expanded


def bind(spec) -> Binding:
    """The arrays that make ``spec`` (a built :class:`pymlsem.mlm.model.BuiltMixedModel`: non-Gaussian, or
    Gaussian with sampled random effects or none) a model of a GLMM family.

    Raises
    ------
    Unsupported
        When the model needs something the families do not express as data (the message says what).
    """
    design, response = spec.design, spec.response
    gaussian = spec.family == "gaussian"
    family = {("bernoulli", "logit"): "glmm_binomial_logit", ("bernoulli", "probit"): "glmm_binomial_probit"}
    family |= {(_LIKELIHOODS[f][0], _LIKELIHOODS[f][1]): f for f in _LIKELIHOODS}
    kind, link = ("gaussian", "identity") if gaussian else (response.family, response.link)
    if (kind, link) not in family:
        raise Unsupported(f"the {kind} family with the {link} link (not an engine family yet)")
    columns = tuple(range(len(design.blocks)))  # formula order
    # a Gaussian model's priors are in the data's units, as its marginal families' (mixed.bind)
    center, unit = data_scale(design.y) if gaussian else response_scale(response)
    variables, hyper, family_of, parts, reals = effect_arrays(spec, columns, center, unit)
    name = family[(kind, link)]
    parts |= {f"prior_{prior}": np.flatnonzero(family_of == prior) for prior in PRIOR_FAMILIES}

    positions = {v[0]: v[3] for v in variables}
    # a residual SD may carry its prior on the variance or the precision (its power of the SD)
    sigma_prior = spec.priors["sigma"] if kind in ("student", "gaussian") else None
    sigma_scale = sigma_prior.scale if sigma_prior is not None else None
    own_names = tuple(
        carrier_name(own, sigma_scale) if own == "sigma_std" else own
        for own in RESPONSE_PARAMETERS.get(kind, ())
    )
    missing = [own for own in own_names if own not in positions]
    if missing:
        raise Unsupported(f"the {kind} family's parameters {missing} are not free variables")
    parts["response_param"] = np.concatenate(
        [np.zeros(0, dtype=np.int64), *(positions[own] for own in own_names)]
    )
    reals["response_unit"] = np.array([unit])
    reals["response_power"] = np.array([sd_power(sigma_prior) if sigma_prior is not None else 1.0])
    n_effects = sum(block.q for block in design.blocks)
    n_rows = design.y.shape[0]
    z_param, z_place = [], []
    row_levels = np.zeros((n_rows, n_effects), dtype=np.int64)
    z_design = np.zeros((n_rows, n_effects))
    level_offset = effect_offset = 0
    for block, label in zip(design.blocks, spec.labels, strict=True):
        own = f"z__{label}"
        if own not in positions:
            raise Unsupported(f"the random effects of {label} are not the standardised z__{label}")
        levels = np.arange(block.n_levels)[:, None] + level_offset
        effects = np.arange(block.q)[None, :] + effect_offset
        z_param.append(positions[own])  # z__label is (levels, effects), row by row
        z_place.append((levels * n_effects + effects).ravel())
        row_levels[:, effect_offset : effect_offset + block.q] = (block.codes + level_offset)[:, None]
        z_design[:, effect_offset : effect_offset + block.q] = block.z
        level_offset += block.n_levels
        effect_offset += block.q
    parts |= {
        "z_param": np.concatenate([np.zeros(0, dtype=np.int64), *z_param]),  # none without random terms
        "z_place": np.concatenate([np.zeros(0, dtype=np.int64), *z_place]),
        "n_levels": np.array([level_offset]),
        "response_code": np.array([list(_LIKELIHOODS).index(name)]),  # what kernels read
    }
    ints, offsets = pack(parts, _segments(name), "int64")
    real_values, real_offsets = pack(reals, _REALS, "float64")
    trials = response.trials if not gaussian and response.trials is not None else np.ones(n_rows)
    offset = response.offset if not gaussian and response.offset is not None else np.zeros(n_rows)
    data = {
        "hyper": hyper,
        "ints": ints,
        "offsets": offsets,
        "reals": real_values,
        "real_offsets": real_offsets,
        "x": np.asarray(design.x, dtype=float).reshape(n_rows, -1),
        "z_design": z_design,
        "row_levels": row_levels,
        "y": np.asarray(design.y if gaussian else response.y, dtype=float),
        "trials": np.asarray(trials, dtype=float),
        "offset": np.asarray(offset, dtype=float),
    }
    p = len(design.fixed_names) + len(RESPONSE_DETERMINISTICS.get(kind, ()))
    n_derived = p + n_effects + 2 * n_effects**2 + level_offset * n_effects
    return Binding(name, data, variables, n_derived)
