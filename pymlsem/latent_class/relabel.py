"""Label switching: the classes of every draw renamed to match one pivot draw.

A latent class model's likelihood and priors are the same under every permutation of the classes' labels, so
chains started apart settle on different labellings (and a chain may switch). The fit renames them after
sampling with the pivotal reordering algorithm (Marin, Mengersen and Robert 2005, as R's label.switching
package has it): the pivot is the draw with the highest log-likelihood; each draw's person classes are
permuted to the assignment that brings its class-specific item parameters (category probabilities, and
continuous items' means in SD units) closest, in squared distance, to the pivot's, an assignment problem
solved exactly (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`). With clusters, the
cluster classes are then permuted by their class proportions given the cluster class, likewise. Every
summary and convergence check reads the renamed draws.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["pivot_permutations", "relabel"]


def pivot_permutations(profiles: np.ndarray, pivot: int) -> np.ndarray:
    """The permutation of every draw's classes closest to the pivot draw's.

    Parameters
    ----------
    profiles
        (draws, classes, features): what identifies each class in each draw.
    pivot
        The pivot draw's position.

    Returns
    -------
    numpy.ndarray
        int (draws, classes): new class ``a`` of draw ``s`` is its old class ``permutations[s, a]``.
    """
    target = profiles[pivot]
    out = np.empty(profiles.shape[:2], dtype=np.int64)
    for s, profile in enumerate(profiles):
        cost = ((target[:, None, :] - profile[None, :, :]) ** 2).sum(-1)
        _, out[s] = linear_sum_assignment(cost)
    return out


def relabel(draws: dict[str, np.ndarray], axes: dict[str, tuple[int, ...]], permutations: np.ndarray) -> dict:
    """The draws with the classes permuted.

    Parameters
    ----------
    draws
        Name -> array with draws on axis 0.
    axes
        Name -> the axes (counting the draw axis) that index the classes being permuted; names not here are
        left as they are.
    permutations
        As :func:`pivot_permutations` returns.

    Returns
    -------
    dict
        The permuted draws.
    """
    rows = np.arange(len(permutations))
    out = dict(draws)
    for name, class_axes in axes.items():
        array = draws[name]
        for axis in class_axes:
            moved = np.moveaxis(array, axis, 1)
            array = np.moveaxis(moved[rows[:, None], permutations], 1, axis)
        out[name] = array
    return out
