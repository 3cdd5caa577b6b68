"""LIME (Ribeiro et al., 2016): a weighted linear surrogate fitted on random removals of elements."""

from __future__ import annotations

from typing import Any

import torch

from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Sample, Tokenizer

DISTANCES = ("cosine", "hamming")


def lime_kernel(present: torch.Tensor, distance: str = "cosine", kernel_width: float = 0.5) -> torch.Tensor:
    """Similarity weights `exp(-d^2 / kernel_width^2)` of perturbed binary vectors to the original (all ones).

    Args:
        present: `(rows, m)` bool, True where a row keeps an element; the original is the all-True row.
        distance: `"cosine"`: `d = 1 - cos(z, 1) = 1 - sqrt(k / m)` for a row keeping k of m elements (1 when
            nothing is kept); `"hamming"`: the fraction of removed elements, `d = 1 - k / m`.
        kernel_width: the width of the exponential kernel (in units of the distance, which lies in [0, 1]).

    Returns:
        `(rows,)` float64 weights in (0, 1], equal to 1 for the original and decreasing as more is removed.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} is unknown: use one of {DISTANCES}.")
    kept_fraction = present.double().mean(1)
    d = 1 - kept_fraction.sqrt() if distance == "cosine" else 1 - kept_fraction
    return torch.exp(-(d**2) / kernel_width**2)


def weighted_ridge(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients `(m,)` and intercept of `min_{b, beta} sum_i w_i (y_i - b - x_i . beta)^2 + alpha ||beta||^2`.

    As scikit-learn's `Ridge(alpha).fit(x, y, sample_weight=w)`: the intercept is not penalized (the weighted
    means are removed first). Solved in closed form by least squares on the system stacked with
    `sqrt(alpha) I`, in float64: with `alpha > 0` it is the unique solution of the normal equations
    `(Xc^T W Xc + alpha I) beta = Xc^T W yc`; with `alpha = 0` and too few distinct rows, the minimum-norm one.
    Never raises on a singular design.
    """
    x, y, weights = x.double(), y.double(), weights.double()
    total = weights.sum()
    x_mean, y_mean = weights @ x / total, weights @ y / total
    root = weights.sqrt()[:, None]
    m = x.shape[1]
    design = torch.cat([root * (x - x_mean), alpha**0.5 * torch.eye(m, dtype=torch.float64)])
    rhs = torch.cat([root[:, 0] * (y - y_mean), torch.zeros(m, dtype=torch.float64)])
    beta = torch.linalg.lstsq(design, rhs[:, None], driver="gelsd").solution[:, 0]
    return beta, y_mean - x_mean @ beta


class Lime(PerturbationExplainer):
    """LIME: the coefficients of a weighted ridge regression of the score on which elements are present.

    Each of `n_perturbations` rows removes a number of elements drawn uniformly in 1..n, at uniformly random
    positions (as the reference implementation for text), by replacing their tokens with the replacement
    token. With `z in {0, 1}^n` the presence vector of a row (the original input is the all-ones row, always
    included) and `f(z)` its score, the attributions are the `beta` of (Ribeiro et al., 2016, "Why Should I
    Trust You?")::

        min_{b, beta}  sum_z pi(z) (f(z) - b - z . beta)^2 + alpha ||beta||^2
        pi(z) = exp(-d(z, 1)^2 / kernel_width^2)

    so rows closer to the input weigh more (weight 1 for the input itself). `d` is the cosine distance
    `1 - sqrt(k / n)` for a row keeping k of n elements, or the fraction removed `1 - k / n` (`"hamming"`).
    On a model that is linear in the presence of elements, `beta` equals each element's effect (up to the
    shrinkage of `alpha`). The ridge term keeps the system invertible: with one element every row removes it,
    and its coefficient is `(f(x) - f(x without it)) * s / (s + alpha)` with `s` the weighted variance term of
    the single column (about 1 with the defaults); two elements likewise never raise.

    For generation each target has its own regression over the elements it can see (distances too): the
    rows are shared by all targets.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of perturbed rows through the model (the input comes on top).
        seed: seed of the sampling: the same seed gives the same attributions.
        kernel_width: width of the exponential kernel on the distance (which lies in [0, 1]); smaller is more
            local. The reference implementation's text default is `0.25 * sqrt(2)` with the cosine distance.
        distance: `"cosine"` or `"hamming"` (see `lime_kernel`).
        alpha: ridge penalty on the coefficients (not on the intercept), `>= 0`, on the unnormalized weighted
            sum of squares as in scikit-learn's `Ridge` (the reference implementation uses 1.0).
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.

    Examples:
        >>> import torch
        >>> from interpreto.attribution.lime import Lime
        >>> from interpreto.zoo.additive import additive_classifier
        >>> model, tokenizer = additive_classifier({"great": 2.0, "awful": -3.0})
        >>> explainer = Lime(model, tokenizer, n_perturbations=200, alpha=1e-6, progress=False)
        >>> out = explainer("a great awful film", targets="positive")[0]
        >>> out.elements
        ['a', 'great', 'awful', 'film']
        >>> effects = torch.tensor([0.0, 2.0, -3.0, 0.0])
        >>> bool((out.attributions[0] - effects).abs().max() <= 1e-4 * effects.abs().max())
        True
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 1000,
        seed: int = 0,
        kernel_width: float = 0.5,
        distance: str = "cosine",
        alpha: float = 0.01,
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, **kwargs)
        self.n_perturbations = n_perturbations
        self.seed = seed
        self.kernel_width = kernel_width
        self.distance = distance
        self.alpha = alpha

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_integer("n_perturbations", self.n_perturbations)
        check_integer("seed", self.seed, minimum=0)
        width = self.kernel_width
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"kernel_width must be a positive number, got {width!r}.")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0 (0: no penalty), got {self.alpha!r}.")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance={self.distance!r} is unknown: use one of {DISTANCES}.")

    def masks(self, sample: Sample, generator: torch.Generator) -> torch.Tensor:
        """Rows removing k ~ Uniform{1..n} elements at random, `(n_perturbations, n_elements)` bool.

        Only elements some target can see are removed.
        """
        players = sample.visible.any(0)
        n, rows = int(players.sum()), self.n_perturbations
        n_removed = torch.randint(1, n + 1, (rows,), generator=generator)
        ranks = torch.rand(rows, n, generator=generator, dtype=torch.float64).argsort(1).argsort(1)
        masks = torch.zeros(rows, sample.n_elements, dtype=torch.bool)
        masks[:, players] = ranks < n_removed[:, None]
        return masks

    def solve(
        self, sample: Sample, masks: torch.Tensor, scores: torch.Tensor, input_scores: torch.Tensor
    ) -> torch.Tensor:
        present = torch.cat([torch.ones(1, sample.n_elements, dtype=torch.bool), ~masks])
        values = torch.cat([input_scores[None], scores]).double()
        attributions = torch.zeros(sample.n_targets, sample.n_elements, dtype=torch.float64)
        for target in range(sample.n_targets):
            visible = sample.visible[target]
            rows = present[:, visible]
            weights = lime_kernel(rows, self.distance, float(self.kernel_width))
            attributions[target, visible], _ = weighted_ridge(rows, values[:, target], weights, self.alpha)
        return attributions
