"""Latent class models (``pymlsem.lca``): the summed-out log-likelihood and class probabilities against
enumeration of every class assignment, the relabelling, bad input, and recovery of a simulated multilevel
latent class model's truth."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytensor
import pytest
from graphs import AS_WRITTEN, python_thunks
from scipy import stats
from scipy.optimize import linear_sum_assignment
from tolerances import check_close, check_truth, mcse, mle_allowance, stack_draws

import pymlsem
from pymlsem.datasets.designs import multilevel_latent_classes
from pymlsem.exceptions import ConvergenceWarning, DataError, ModelSpecificationError
from pymlsem.latent_class.data import lca_data
from pymlsem.latent_class.model import LCAStructure, build_lca_model, mixture_terms, parameter_names
from pymlsem.latent_class.relabel import pivot_permutations, relabel

ITEMS = ["b1", "b2", "o1", "c1"]


def _small_data() -> pd.DataFrame:
    """Three clusters of 2-3 persons: two binary items (one answer missing), a 3-category item (its
    categories 1, 2, 5), a continuous item (one missing)."""
    return pd.DataFrame(
        {
            "b1": [0, 1, 1, 0, np.nan, 1, 0],
            "b2": [1, 1, 0, 0, 1, 0, 1],
            "o1": [1, 5, 2, 2, 1, 5, 5],
            "c1": [0.3, -1.2, 2.0, np.nan, 0.5, 1.1, -0.4],
            "cl": ["a", "a", "b", "b", "b", "c", "c"],
        }
    )


def _parameters(rng, data, structure) -> dict[str, np.ndarray]:
    k, m = structure.n_classes, structure.n_cluster_classes
    out = {}
    if structure.multilevel:
        out["cluster_class_proportions"] = rng.dirichlet(np.ones(m))
        out["class_proportions"] = rng.dirichlet(np.ones(k), size=m)
    else:
        out["class_proportions"] = rng.dirichlet(np.ones(k))
    for group in data.groups:
        out[f"item_probs_c{group.n_categories}"] = rng.dirichlet(
            np.ones(group.n_categories), size=(len(group.items), k)
        )
    out["item_means"] = rng.normal(size=(len(data.continuous), k))
    out["item_sds"] = rng.uniform(0.5, 1.5, size=len(data.continuous))
    return out


def _person_class_density(frame, data, params, i, k) -> float:
    """p(y_i | class k), written out item by item with scipy (missing answers skipped)."""
    density = 1.0
    for group in data.groups:
        for h, item in enumerate(group.items):
            value = frame[item].iloc[i]
            if not np.isnan(value):
                category = list(group.categories[h]).index(value)
                density *= params[f"item_probs_c{group.n_categories}"][h, k, category]
    for h, item in enumerate(data.continuous):
        value = frame[item].iloc[i]
        if not np.isnan(value):
            z = (value - data.center[h]) / data.scale[h]
            density *= stats.norm.pdf(z, params["item_means"][h, k], params["item_sds"][h])
    return density


def _evaluate(params, data, structure) -> dict[str, np.ndarray]:
    names = parameter_names(data, structure)
    inputs = {n: pytensor.shared(params[n]) for n in names}
    terms = mixture_terms(inputs, data.arrays(), structure)
    with python_thunks():
        return {name: value.eval() for name, value in terms.items()}


@pytest.mark.parametrize("multilevel", [False, True])
def test_summed_log_likelihood_and_class_probabilities_equal_enumeration(multilevel) -> None:
    """Every cluster's density and the classes' posterior probabilities, summed over all M x K^n class
    assignments of its persons by brute force, equal the log-sum-exp expressions of the model."""
    frame = _small_data()
    data = lca_data(frame, ITEMS, "cl" if multilevel else None, continuous=["c1"])
    structure = LCAStructure(2, 2 if multilevel else 1, multilevel)
    params = _parameters(np.random.default_rng(7), data, structure)
    terms = _evaluate(params, data, structure)
    k = structure.n_classes
    dens = np.array([[_person_class_density(frame, data, params, i, c) for c in range(k)] for i in range(7)])
    if not multilevel:
        joint = params["class_proportions"] * dens
        np.testing.assert_allclose(terms["unit_loglik"], np.log(joint.sum(1)), rtol=1e-12)
        np.testing.assert_allclose(terms["person_class"], joint / joint.sum(1, keepdims=True), rtol=1e-12)
        return
    for j, label in enumerate(data.cluster_labels):
        rows = np.flatnonzero(frame["cl"].to_numpy() == label)
        total, by_cluster_class, by_person = 0.0, np.zeros(2), np.zeros((len(rows), k))
        for m in range(2):
            for classes in itertools.product(range(k), repeat=len(rows)):
                weight = params["cluster_class_proportions"][m]
                for row, c in zip(rows, classes, strict=True):
                    weight *= params["class_proportions"][m, c] * dens[row, c]
                total += weight
                by_cluster_class[m] += weight
                for position, c in enumerate(classes):
                    by_person[position, c] += weight
        np.testing.assert_allclose(terms["unit_loglik"][j], np.log(total), rtol=1e-12)
        np.testing.assert_allclose(terms["cluster_class"][j], by_cluster_class / total, rtol=1e-10)
        np.testing.assert_allclose(terms["person_class"][rows], by_person / total, rtol=1e-10)


def test_model_log_density_is_priors_plus_the_summed_likelihood() -> None:
    """The PyMC model's log-density at a point: the Dirichlet, normal and half-normal priors (scipy) plus
    the log-likelihood of :func:`mixture_terms`."""
    frame = _small_data()
    data = lca_data(frame, ITEMS, "cl", continuous=["c1"])
    structure = LCAStructure(2, 2, True)
    params = _parameters(np.random.default_rng(3), data, structure)
    model = build_lca_model(data, structure)
    with python_thunks():  # nothing compiled
        logp = model.compile_logp(jacobian=False)
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms[rv]
        if transform is None:
            point[value.name] = params[rv.name]
            continue
        point[value.name] = transform.forward(params[rv.name]).eval(mode=AS_WRITTEN)
        # the values the model sees: the transform's round trip, which moves them by ~1e-16
        params[rv.name] = transform.backward(point[value.name]).eval(mode=AS_WRITTEN)
    priors = stats.dirichlet.logpdf(params["cluster_class_proportions"], np.ones(2))
    priors += sum(stats.dirichlet.logpdf(p, np.ones(2)) for p in params["class_proportions"])
    for group in data.groups:
        probs = params[f"item_probs_c{group.n_categories}"].reshape(-1, group.n_categories)
        priors += sum(stats.dirichlet.logpdf(p, np.ones(group.n_categories)) for p in probs)
    priors += (
        stats.norm.logpdf(params["item_means"], 0, 5).sum() + stats.halfnorm.logpdf(params["item_sds"]).sum()
    )
    loglik = _evaluate(params, data, structure)["unit_loglik"].sum()
    np.testing.assert_allclose(logp(point), priors + loglik, rtol=1e-10)


def test_relabelling_undoes_permuted_classes() -> None:
    """Draws whose person and cluster classes were permuted at random come back in the pivot's labels."""
    rng = np.random.default_rng(0)
    k, m, items = 3, 2, 4
    probs = np.array([0.1, 0.5, 0.9])[None, :, None] * np.ones((items, k, 1))
    item_probs = np.concatenate([1 - probs, probs], axis=2)  # (items, K, 2)
    given = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])  # (M, K)
    draws = {"item_probs_c2": [], "class_proportions": [], "cluster_class_proportions": []}
    truth_person, truth_cluster = [], []
    for _ in range(50):
        p, q = rng.permutation(k), rng.permutation(m)
        draws["item_probs_c2"].append(item_probs[:, p] + rng.normal(0, 0.01, item_probs.shape))
        draws["class_proportions"].append(given[q][:, p])
        draws["cluster_class_proportions"].append(np.array([0.4, 0.6])[q])
        truth_person.append(p)
        truth_cluster.append(q)
    draws = {name: np.stack(v) for name, v in draws.items()}
    draws["item_probs_c2"][0] = item_probs  # the pivot, unpermuted
    draws["class_proportions"][0], draws["cluster_class_proportions"][0] = given, np.array([0.4, 0.6])
    person = pivot_permutations(draws["item_probs_c2"].transpose(0, 2, 1, 3).reshape(50, k, -1), 0)
    out = relabel(draws, {"item_probs_c2": (2,), "class_proportions": (2,)}, person)
    cluster = pivot_permutations(out["class_proportions"], 0)
    out = relabel(out, {"class_proportions": (1,), "cluster_class_proportions": (1,)}, cluster)
    np.testing.assert_allclose(out["item_probs_c2"], item_probs[None].repeat(50, 0), atol=0.05)
    np.testing.assert_allclose(out["class_proportions"], given[None].repeat(50, 0))
    np.testing.assert_allclose(out["cluster_class_proportions"][:, 1], 0.6)
    assert (person[1:] == np.argsort(np.stack(truth_person)[1:], axis=1)).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"items": "b1"}, DataError, "list of column names"),
        ({"items": ["b1"], "continuous": []}, DataError, "at least two items"),
        ({"items": ["b1", "b1", "b2"], "continuous": []}, DataError, "more than once"),
        ({"items": ["b1", "b11"], "continuous": []}, DataError, "did you mean"),
        ({"continuous": ["zz"]}, DataError, "not in items"),
        ({"continuous": []}, DataError, "fractional"),
        ({"n_classes": 0}, ModelSpecificationError, "positive integer"),
        ({"n_classes": 2.5}, ModelSpecificationError, "positive integer"),
        ({"cluster": "cl"}, ModelSpecificationError, "needs n_cluster_classes"),
        ({"n_cluster_classes": 2}, ModelSpecificationError, "needs cluster"),
        ({"cluster": "cx", "n_cluster_classes": 2}, DataError, "not in the data"),
        ({"draws": 0}, pymlsem.ControlError, "draws"),
    ],
)
def test_bad_input_is_refused_before_compiling(kwargs, error, words) -> None:
    frame = _small_data()
    copy = frame.copy()
    arguments = {"items": ITEMS, "n_classes": 2, "continuous": ["c1"]} | kwargs
    with pytest.raises(error, match=words):
        pymlsem.lca(frame, **arguments)
    pd.testing.assert_frame_equal(frame, copy)


def test_a_row_without_answers_is_an_error_not_dropped() -> None:
    frame = _small_data()
    frame.loc[2, ITEMS] = np.nan
    with pytest.raises(DataError, match=r"1 row\(s\) have every item missing \(index \[2\]\)"):
        lca_data(frame, ITEMS, continuous=["c1"])


@pytest.mark.sampling
def test_multilevel_latent_class_recovers_the_truth() -> None:
    """Class proportions at both levels and every item probability against the truth of a simulation
    (posterior mean within the Bonferroni-corrected tolerance of the posterior SD, as every truth check of
    the suite: see tests/tolerances.py), after naming the fit's classes as the truth's (the labels are
    arbitrary: the assignment closest in item probabilities, then in class proportions given the cluster
    class). A bug that swapped the levels' proportions, or read an item's categories in the wrong order,
    moves several estimates 0.3-0.5 from the truth, tens of posterior SDs (about 0.02-0.05 here). The
    design: :func:`pymlsem.datasets.designs.multilevel_latent_classes` (100 clusters of 15 persons, four
    binary items and one with three categories)."""
    design = multilevel_latent_classes(seed=2026)
    frame, truth = design.data, design.truth
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = pymlsem.lca(
            frame,
            items=list(design.items),
            n_classes=2,
            cluster="cluster",
            n_cluster_classes=2,
            draws=500,
            tune=500,
            chains=2,
            random_seed=11,
            progressbar=False,
        )
    posterior = fit.idata.posterior
    items = fit.item_probabilities()
    fitted = items.pivot_table(index="class", columns=["item", "category"], values="mean", sort=False)
    true_profile = np.concatenate([truth["item_probs"][item] for item in design.items], axis=1)
    cost = ((true_profile[:, None] - fitted.to_numpy()[None]) ** 2).sum(-1)
    person = linear_sum_assignment(cost)[1]  # the fit's class of each true class
    given = posterior["class_proportions"].values.mean((0, 1))[:, person]
    cost = ((truth["class_proportions"][:, None] - given[None]) ** 2).sum(-1)
    cluster = linear_sum_assignment(cost)[1]
    parts, values, labels = [], [], []
    for m in range(2):
        parts.append(posterior["cluster_class_proportions"].isel(cluster_class=cluster[m]))
        values.append(truth["cluster_class_proportions"][m])
        labels.append(f"pi[cluster class {m}]")
        for k in range(2):
            parts.append(
                posterior["class_proportions"].isel(cluster_class=cluster[m], **{"class": person[k]})
            )
            values.append(truth["class_proportions"][m, k])
            labels.append(f"pi[class {k} | {m}]")
    for group in fit.data.groups:
        draws = posterior[f"item_probs_c{group.n_categories}"]
        for h, item in enumerate(group.items):
            for k in range(2):
                for c in range(group.n_categories):
                    parts.append(
                        draws.isel(
                            {
                                f"item_c{group.n_categories}": h,
                                f"category_c{group.n_categories}": c,
                                "class": person[k],
                            }
                        )
                    )
                    values.append(truth["item_probs"][item][k, c])
                    labels.append(f"P({item}={c} | {k})")
    draws = stack_draws(parts)
    check_truth(draws, np.array(values), labels=labels)
    # the tables read the same draws, in the fit's labels
    table = fit.class_proportions()
    assert list(table["level"]) == [2, 2, 1, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(
        table["mean"].iloc[:2], posterior["cluster_class_proportions"].mean(("chain", "draw"))
    )
    assert list(items["item"].unique()) == ["y1", "y2", "y3", "y4", "y5"]
    np.testing.assert_allclose(items.groupby(["item", "class"])["mean"].sum(), 1.0)
    membership = fit.membership(1)
    assert membership.index.equals(frame.index)
    np.testing.assert_allclose(membership[["class_1", "class_2"]].sum(1), 1.0)
    assert fit.membership(2).shape == (100, 3)
    assert 0.5 < fit.entropy(1) <= 1 and 0.5 < fit.entropy(2) <= 1
    loo = fit.loo()
    assert np.isfinite(loo.elpd) and loo.elpd < 0
    assert "Class proportions" in fit.summary()
    figure = fit.plot_profiles()  # one line per class through P(highest category) of every item
    highest = items[items["category"] == items.groupby("item")["category"].transform("max")]
    lines = [container.lines[0] for container in figure.axes[0].containers]  # each errorbar's data line
    assert len(lines) == 2
    for k, line in enumerate(lines, start=1):
        np.testing.assert_allclose(
            np.asarray(line.get_ydata(), dtype=float), highest.loc[highest["class"] == k, "mean"]
        )


FLEXMIX = Path(__file__).parent.parent / "data" / "reference" / "flexmix"
#: flexmix's maximised log-likelihood, printed by lca_binary.R
FLEXMIX_LOGLIK = -3689.505187


def test_log_likelihood_at_flexmix_estimates_equals_flexmix() -> None:
    """The summed-out log-likelihood at flexmix's ML estimates (EM, 20 starts) equals flexmix's logLik: the
    likelihood is the one another program maximises."""
    frame = pd.read_csv(FLEXMIX / "lca_binary_data.csv")
    reference = pd.read_csv(FLEXMIX / "lca_binary_estimates.csv")
    data = lca_data(frame, ["y1", "y2", "y3", "y4"])
    structure = LCAStructure(2, 1, False)
    p_yes = reference[reference["parameter"] == "p_yes"].pivot(
        index="item", columns="class", values="estimate"
    )
    params = {
        "class_proportions": reference.loc[
            reference["parameter"] == "class_proportion", "estimate"
        ].to_numpy(),
        "item_probs_c2": np.stack([1 - p_yes.to_numpy(), p_yes.to_numpy()], axis=-1),  # items x K x 2
    }
    loglik = _evaluate(params, data, structure)["unit_loglik"].sum()
    np.testing.assert_allclose(loglik, FLEXMIX_LOGLIK, atol=1e-5)  # flexmix's value as printed (6 decimals)


@pytest.mark.sampling
def test_single_level_posterior_agrees_with_flexmix_ml() -> None:
    """Posterior means of a single-level model against flexmix's ML estimates on the same data: they differ
    by O(1/sqrt(n)) standard errors (the prior, the skewness of the likelihood), the allowance of every MLE
    comparison of the suite (tests/tolerances.py, ``K_MLE / sqrt(n)`` posterior SDs, n = 1,500 persons);
    a probability off by 0.05 (three SEs) fails. Classes matched to flexmix's by their item profiles."""
    frame = pd.read_csv(FLEXMIX / "lca_binary_data.csv")
    reference = pd.read_csv(FLEXMIX / "lca_binary_estimates.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = pymlsem.lca(
            frame,
            ["y1", "y2", "y3", "y4"],
            2,
            draws=500,
            tune=500,
            chains=2,
            random_seed=3,
            progressbar=False,
        )
    posterior = fit.idata.posterior
    p_yes = reference[reference["parameter"] == "p_yes"].pivot(
        index="class", columns="item", values="estimate"
    )
    fitted = posterior["item_probs_c2"].sel(category_c2=1).mean(("chain", "draw")).values.T  # K x items
    cost = ((p_yes.to_numpy()[:, None] - fitted[None]) ** 2).sum(-1)
    match = linear_sum_assignment(cost)[1]  # the fit's class of each flexmix class
    parts, values, labels = [], [], []
    for k in range(2):
        parts.append(posterior["class_proportions"].isel({"class": match[k]}))
        values.append(reference.loc[reference["parameter"] == "class_proportion", "estimate"].iloc[k])
        labels.append(f"pi[{k + 1}]")
        for h, item in enumerate(["y1", "y2", "y3", "y4"]):
            parts.append(posterior["item_probs_c2"].isel({"item_c2": h, "category_c2": 1, "class": match[k]}))
            values.append(p_yes.loc[k + 1, item])
            labels.append(f"P({item}=1 | {k + 1})")
    draws = stack_draws(parts)
    check_close(
        draws.mean(("chain", "draw")),
        values,
        mcse(draws),
        mle_allowance(draws.std(("chain", "draw")), fit.data.n_rows),
        labels=labels,
    )
    # no draw's likelihood exceeds the maximum flexmix found
    assert fit.pointwise_log_likelihood("observation").values.sum(1).max() <= FLEXMIX_LOGLIK + 1e-6
