"""KernelSHAP (Lundberg & Lee, 2017): Shapley values as a weighted linear regression on coalitions."""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Sample, Tokenizer


def size_mass(n: int) -> torch.Tensor:
    """Total Shapley-kernel mass of the coalitions of each size s = 1..n-1: `(n - 1) / (s (n - s))`, float64.

    The kernel of one coalition of size s is `(n - 1) / (C(n, s) s (n - s))`; there are C(n, s) of them.
    """
    sizes = torch.arange(1, n, dtype=torch.float64)
    return (n - 1) / (sizes * (n - sizes))


def coalitions(n: int, budget: int, generator: torch.Generator) -> torch.Tensor:
    """At most `budget` coalitions of `n` players, `(rows, n)` bool (True = the player is present).

    Never the empty nor the full coalition (the constraint of the regression covers them). All `2^n - 2` when
    they fit in the budget; otherwise, going from the extreme sizes (1 and n-1, the largest kernel weight per
    coalition) inwards, a pair of sizes is enumerated completely while the budget it would get by sampling
    covers all its coalitions (as in the `shap` library), and the remaining budget is sampled: a size drawn
    proportionally to its kernel mass, a uniformly random coalition of that size, and its complement
    (antithetic pairs; one unpaired coalition when the budget is odd).
    """
    if n < 2:
        return torch.zeros(0, n, dtype=torch.bool)
    if 2**n - 2 <= budget:
        codes = torch.arange(1, 2**n - 1)
        return (codes[:, None] >> torch.arange(n)) & 1 == 1
    mass = size_mass(n)
    rows, left, smallest = [], budget, 1
    while smallest <= n - smallest:
        sizes = sorted({smallest, n - smallest})
        count = sum(math.comb(n, s) for s in sizes)
        share = float(mass[[s - 1 for s in sizes]].sum() / mass[smallest - 1 : n - smallest].sum())
        if count > left * share:
            break
        for s in sizes:
            present = torch.zeros(math.comb(n, s), n, dtype=torch.bool)
            for row, players in enumerate(itertools.combinations(range(n), s)):
                present[row, list(players)] = True
            rows.append(present)
        left -= count
        smallest += 1
    if left > 0 and smallest <= n - smallest:
        probabilities = torch.zeros(n - 1, dtype=torch.float64)
        probabilities[smallest - 1 : n - smallest] = mass[smallest - 1 : n - smallest]
        n_draws = (left + 1) // 2
        sizes = torch.multinomial(probabilities, n_draws, replacement=True, generator=generator) + 1
        ranks = torch.rand(n_draws, n, generator=generator, dtype=torch.float64).argsort(1).argsort(1)
        drawn = ranks < sizes[:, None]
        rows.append(torch.stack([drawn, ~drawn], dim=1).reshape(2 * n_draws, n)[:left])
    return torch.cat(rows) if rows else torch.zeros(0, n, dtype=torch.bool)


def constrained_kernel_regression(present: torch.Tensor, gains: torch.Tensor, total: float) -> torch.Tensor:
    """Shapley estimates `(m,)` from coalitions `(rows, m)` and their gains `v(S) - v(empty)` `(rows,)`.

    Solves `min_phi sum_i w_i (gain_i - present_i . phi)^2` subject to `sum(phi) = total` in closed form
    (the KKT system of the Lagrangian, by least squares so that a rank-deficient design gives the
    minimum-norm solution instead of an error). `w_i` is the kernel mass of the size of coalition i divided by
    the number of rows of that size: within a size every coalition counts the same, and each size counts
    with its exact kernel mass, so an enumeration of all coalitions gives the exact Shapley values. Rows that
    are empty or full carry no information beyond the constraint and are ignored. In float64.
    """
    m = present.shape[1]
    if m == 1:
        return torch.tensor([total], dtype=torch.float64)
    z = present.double()
    size = present.sum(1)
    informative = (size > 0) & (size < m)
    z, gains, size = z[informative], gains[informative].double(), size[informative]
    weights = size_mass(m)[size - 1] / torch.bincount(size, minlength=m + 1)[size]
    system = torch.zeros(m + 1, m + 1, dtype=torch.float64)
    system[:m, :m] = z.T @ (weights[:, None] * z)
    system[:m, m] = system[m, :m] = 1.0
    rhs = torch.cat([z.T @ (weights * gains), torch.tensor([total], dtype=torch.float64)])
    phi = torch.linalg.lstsq(system, rhs[:, None], driver="gelsd").solution[:m, 0]
    return phi + (total - phi.sum()) / m  # the constraint to the last bit


class KernelShap(PerturbationExplainer):
    """KernelSHAP: Shapley values of the elements, estimated by a constrained weighted linear regression.

    The game: `v(S)` is the score with every element outside coalition S replaced by the replacement token.
    The Shapley value of element i, `phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))`,
    is the solution of (Lundberg & Lee, 2017, "A Unified Approach to Interpreting Model Predictions")::

        min_phi  sum_S pi(S) (v(S) - v(empty) - sum_{i in S} phi_i)^2
        s.t.     sum_i phi_i = v(all) - v(empty)          (efficiency)
        pi(S) = (n - 1) / (C(n, |S|) |S| (n - |S|))       (Shapley kernel)

    over all coalitions; KernelSHAP solves it over a sample of coalitions:

    - exact: when the `2^n - 2` non-trivial coalitions fit in `n_perturbations`, all are evaluated and the
      result equals the exact Shapley values (up to float rounding);
    - otherwise sizes are enumerated from the extremes inwards while the budget allows (as in `shap`), and
      the rest is sampled: a size with probability proportional to its kernel mass `(n - 1) / (s (n - s))`,
      a uniform coalition of that size and its complement (paired, antithetic sampling);
    - each row weighs the kernel mass of its size divided by the number of rows of that size;
    - efficiency holds exactly: the attributions of the elements a target can see sum to
      `f(x) - f(x with all of them replaced)` (`output.convergence_delta` holds the float residual).

    For generation each target is its own game over the elements it can see (the others are dummy players):
    the rows are shared by all targets and each regression uses their restriction to the target's elements.
    One element: its value is `f(x) - f(x without it)`. Model calls: `n_perturbations` rows plus the input and
    the fully replaced input, in batches.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of coalitions evaluated (rows through the model, besides the input and the
            fully replaced input).
        seed: seed of the coalition sampling: the same seed gives the same attributions.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.

    Examples:
        >>> from interpreto.attribution.kernel_shap import KernelShap
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = KernelShap(model, tokenizer, n_perturbations=64, progress=False)("the movie was great")[0]
        >>> out.elements
        ['the', 'movie', 'was', 'great']
        >>> # sums to f(x) - f(all replaced), up to the rounding of the sum
        >>> bool(out.convergence_delta.abs().max() <= 1e-5 * out.attributions.abs().sum())
        True
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 1000,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, **kwargs)
        self.n_perturbations = n_perturbations
        self.seed = seed

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_integer("n_perturbations", self.n_perturbations)
        check_integer("seed", self.seed, minimum=0)

    def masks(self, sample: Sample, generator: torch.Generator) -> torch.Tensor:
        """The fully replaced row, then the sampled coalitions, as removal masks `(1 + rows, n_elements)`.

        Only elements some target can see are players; the others are never replaced.
        """
        players = sample.visible.any(0)
        present = coalitions(int(players.sum()), self.n_perturbations, generator)
        masks = torch.zeros(1 + present.shape[0], sample.n_elements, dtype=torch.bool)
        masks[0, players] = True
        masks[1:, players] = ~present
        return masks

    def solve(
        self, sample: Sample, masks: torch.Tensor, scores: torch.Tensor, input_scores: torch.Tensor
    ) -> torch.Tensor:
        empty, present, values = scores[0].double(), ~masks[1:], scores[1:].double()
        attributions = torch.zeros(sample.n_targets, sample.n_elements, dtype=torch.float64)
        for target in range(sample.n_targets):
            visible = sample.visible[target]
            attributions[target, visible] = constrained_kernel_regression(
                present[:, visible],
                values[:, target] - empty[target],
                float(input_scores[target].double() - empty[target]),
            )
        return attributions

    def convergence_delta(self, sample, scores, input_scores, attributions) -> torch.Tensor:
        """Efficiency residual: sum of attributions minus (f(x) - f(all visible elements removed))."""
        total = attributions.masked_fill(~sample.visible, 0.0).sum(-1)
        return total - (input_scores.double() - scores[0].double())
