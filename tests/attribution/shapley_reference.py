"""Exact Shapley values by enumerating the 2^n coalitions (captum's ShapleyValues enumerates n! orders).

`phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))`, with `v` evaluated once per
coalition, all coalitions through the pipeline's own scoring in batches (same replacement token, granularity
and score as the explainer).
"""

from __future__ import annotations

import math

import torch

from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.model.running import explaining
from interpreto.model.sample import Sample
from interpreto.model.task import make_task


def all_coalitions(n: int) -> torch.Tensor:
    """`(2^n, n)` bool, True where a player is present; row `k` is the coalition whose bit mask is `k`."""
    return (torch.arange(2**n)[:, None] >> torch.arange(n)) & 1 == 1


def shapley_from_values(values: torch.Tensor, n: int) -> torch.Tensor:
    """Shapley values `(n_targets, n)` from `values` `(2^n, n_targets)` of every coalition (row k = bit mask k).

    In float64.
    """
    values = values.double()
    codes = torch.arange(2**n)
    sizes = all_coalitions(n).sum(1)
    # weight of a coalition S of size s not containing i: s! (n - s - 1)! / n!
    weight = torch.tensor(
        [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    )
    phi = torch.zeros(values.shape[1], n, dtype=torch.float64)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        gains = values[without | (1 << i)] - values[without]
        phi[:, i] = (weight[sizes[without]].double()[:, None] * gains).sum(0)
    return phi


def exact_shapley(
    explainer: PerturbationExplainer, inputs, targets=None
) -> tuple[torch.Tensor, Sample, torch.Tensor]:
    """Exact Shapley values `(n_targets, n_elements)` of the first input, by the explainer's own scoring.

    Every element is a player (also those a generation target cannot see: they are dummy players with value
    0, and leave the others' values unchanged). Returns the values, the sample, and the scores `(2^n,
    n_targets)` of all coalitions (row k = bit mask k of the present elements).
    """
    task = make_task(explainer.model, explainer.tokenizer, score=explainer.score)
    with explaining(explainer.model, None):
        sample = task.prepare(inputs, targets, explainer._granularity())[0]
        n = sample.n_elements
        _, scores = explainer.perturbed_scores(task, sample, ~all_coalitions(n))
    return shapley_from_values(scores, n), sample, scores
