"""Sobol attribution (Fel et al., 2021): the share of the score's variance each element accounts for.

The estimator is model-free (`sobol_design`, `mixed_matrices`, `first_order_indices`, `total_indices`) and the
explainer only turns its design into masks and the masked rows' scores into indices.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from scipy.stats import qmc

from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Sample, Tokenizer

INDICES = ("total", "first")


def sobol_design(
    n_samples: int, n_variables: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent quasi-Monte Carlo matrices A and B, each `(n_samples, n_variables)`, uniform on [0, 1).

    Both come from one scrambled Sobol' sequence of dimension `2 * n_variables` (A its first half of the
    coordinates, B the second), as in Saltelli et al. (2010); the scrambling is seeded from `generator`.
    Powers of two for `n_samples` keep the sequence's balance properties; other counts are accepted.
    """
    return _design(n_samples, n_variables, _design_seed(generator))


def _design_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def _design(n_samples: int, n_variables: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    sampler = qmc.Sobol(2 * n_variables, scramble=True, rng=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
        points = torch.from_numpy(sampler.random(n_samples))
    return points[:, :n_variables], points[:, n_variables:]


def confounded_columns(removed: torch.Tensor) -> int:
    """How many of the design's binary columns `(n_samples, n_columns)` equal or mirror another column.

    Such variables always switch together (or oppositely): the design cannot tell their effects apart.
    """
    columns = removed.T.numpy()
    canonical = columns ^ columns[:, :1]  # a column and its complement map to the same pattern
    _, inverse, counts = np.unique(canonical, axis=0, return_inverse=True, return_counts=True)
    return int((counts[inverse.ravel()] > 1).sum())


def mixed_matrices(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`(n_variables, n_samples, n_variables)`: entry i is A with its column i taken from B (Saltelli's A_B^(i))."""
    n_variables = a.shape[1]
    mixed = a[None].repeat(n_variables, 1, 1)
    variables = torch.arange(n_variables)
    mixed[variables, :, variables] = b.T
    return mixed


def _normalized(values: torch.Tensor, f_a: torch.Tensor, f_b: torch.Tensor) -> torch.Tensor:
    """Divides by the output variance, estimated on A and B together; 0 where the output does not vary."""
    variance = torch.cat([f_a, f_b]).var(dim=0, correction=0)
    return torch.where(variance > 0, values / torch.where(variance > 0, variance, 1.0), 0.0)


def first_order_indices(f_a: torch.Tensor, f_b: torch.Tensor, f_ab: torch.Tensor) -> torch.Tensor:
    """First-order indices, Saltelli et al. (2010): `S_i = mean_j f(B)_j (f(A_B^(i))_j - f(A)_j) / V`.

    Args:
        f_a: outputs on A, `(n_samples, ...)`.
        f_b: outputs on B, `(n_samples, ...)`.
        f_ab: outputs on each A_B^(i), `(n_variables, n_samples, ...)`.

    Returns:
        `(n_variables, ...)`: the share of the variance V of the output explained by each variable alone.
        An estimate: it can come out slightly negative for variables without effect.
    """
    return _normalized((f_b[None] * (f_ab - f_a[None])).mean(dim=1), f_a, f_b)


def total_indices(f_a: torch.Tensor, f_b: torch.Tensor, f_ab: torch.Tensor) -> torch.Tensor:
    """Total indices, Jansen (1999): `S_Ti = mean_j (f(A)_j - f(A_B^(i))_j)^2 / (2 V)`.

    Args: as in `first_order_indices`.

    Returns:
        `(n_variables, ...)`, non-negative: the share of the variance V of the output that involves each
        variable, alone or through its interactions with others.
    """
    return _normalized((f_a[None] - f_ab).square().mean(dim=1) / 2, f_a, f_b)


class Sobol(PerturbationExplainer):
    """Sobol attribution: each element's Sobol index, the share of the score's variance it accounts for.

    Each element is a binary input variable, kept with probability p = `keep_probability` and otherwise removed
    (its tokens replaced by the replacement token): for a design coordinate u_i in [0, 1), element i is
    removed where `u_i >= p`. Two scrambled Sobol' designs A and B of N rows and the n matrices A_B^(i) (A with
    column i from B) give, with f the explained score and V the variance of f over the rows of A and B:

    - `index="total"` (default, Jansen 1999): `S_Ti = mean_j (f(A)_j - f(A_B^(i))_j)^2 / (2 V)`, everything
      the element takes part in, its interactions with other elements included.
    - `index="first"` (Saltelli et al. 2010): `S_i = mean_j f(B)_j (f(A_B^(i))_j - f(A)_j) / V`, the element
      alone.

    Unsigned: an index says how much of the score's variation an element is responsible for, not whether it
    raises or lowers the score. Indices are fractions of V (total indices sum to at least 1 and first-order
    ones to at most 1, up to estimation noise); they are all 0 for a target whose score never varies. Fel et
    al., "Look at the Variance! Efficient Black-box Explanations with Sobol-based Sensitivity Analysis",
    NeurIPS 2021, with elements switched off instead of image regions blurred.

    Thresholding a Sobol' sequence keeps one bit per coordinate, and with N points these bits take few
    patterns: with too few rows, two variables get the same (or the opposite) column and cannot be told apart,
    and an element whose A and B columns coincide gets an index of 0 whatever the model does (7% of elements
    with 16 elements and N = 32). Hence the default N: the smallest power of two, at least 32, for which all
    2 n columns differ (64 for 8 elements, 128 for 12 to 16, 256 for 24 to 48, 512 for 64 to 100).

    Cost: N (n_elements + 2) masked rows. Rows with the same tokens go through the model once, and A_B^(i)
    equals A wherever both coordinates fall on the same side of p, so on average N (2 + 2 p (1 - p) n_elements)
    rows are run: N (2 + n_elements / 2) at p = 0.5.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: rows N of each design A and B, or None (default) for the smallest power of two, at
            least 32, that gives every element its own design columns. A count too small for that is used as
            given, with a warning.
        index: `"total"` or `"first"`.
        keep_probability: probability p that an element is kept in a row, in (0, 1).
        seed: seed of the design's scrambling: the same seed gives the same indices.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.

    Examples:
        >>> from interpreto.attribution.sobol import Sobol
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = Sobol(model, tokenizer, progress=False)("the movie was great")[0]
        >>> bool((out.attributions >= 0).all())
        True
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int | None = None,
        index: str = "total",
        keep_probability: float = 0.5,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, **kwargs)
        self.n_perturbations = n_perturbations
        self.index = index
        self.keep_probability = keep_probability
        self.seed = seed

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_integer("n_perturbations", self.n_perturbations, minimum=2, allow_none=True)
        if self.index not in INDICES:
            raise ValueError(f"index={self.index!r} is unknown: use one of {list(INDICES)}.")
        p = self.keep_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1:
            raise ValueError(f"keep_probability must be a number strictly between 0 and 1, got {p!r}.")
        check_integer("seed", self.seed, minimum=0)

    def masks(self, sample: Sample, generator: torch.Generator) -> torch.Tensor:
        """Rows A, then B, then A_B^(1) ... A_B^(n): True where the element is removed.

        Elements without tokens (the last continuation token in generation) are no variables: never removed.
        """
        active = _active_elements(sample)
        a, b = self._removed(len(active), _design_seed(generator))
        design = torch.cat([a, b, mixed_matrices(a, b).flatten(0, 1)])
        masks = torch.zeros(design.shape[0], sample.n_elements, dtype=torch.bool)
        masks[:, active] = design
        return masks

    def _removed(self, n_variables: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The thresholded designs A and B, True where an element is removed."""

        def removed(n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
            a, b = _design(n_samples, n_variables, seed)
            return a >= self.keep_probability, b >= self.keep_probability

        def separating() -> int:
            for exponent in range(_MIN_EXPONENT, _MAX_EXPONENT + 1):
                if not confounded_columns(torch.cat(removed(2**exponent), dim=1)):
                    return 2**exponent
            return 2**_MAX_EXPONENT

        if self.n_perturbations is None:
            return removed(separating())
        a, b = removed(self.n_perturbations)
        n_confounded = confounded_columns(torch.cat([a, b], dim=1))
        if n_confounded:
            warnings.warn(
                f"Sobol: n_perturbations={self.n_perturbations} is too few for {n_variables} elements: "
                f"{n_confounded} of the design's {2 * n_variables} columns equal or mirror another, so "
                f"those elements' indices are confounded (0 where an element's A and B columns coincide). "
                f"Pass n_perturbations=None to use {separating()} here.",
                UserWarning,
                stacklevel=2,
            )
        return a, b

    def solve(
        self, sample: Sample, masks: torch.Tensor, scores: torch.Tensor, input_scores: torch.Tensor
    ) -> torch.Tensor:
        active = _active_elements(sample)
        n_samples = masks.shape[0] // (len(active) + 2)
        scores = scores.double()
        f_a, f_b = scores[:n_samples], scores[n_samples : 2 * n_samples]
        f_ab = scores[2 * n_samples :].reshape(len(active), n_samples, -1)
        estimator = total_indices if self.index == "total" else first_order_indices
        attributions = torch.zeros(sample.n_targets, sample.n_elements)
        attributions[:, active] = estimator(f_a, f_b, f_ab).T.float()
        return attributions


_MIN_EXPONENT, _MAX_EXPONENT = 5, 20


def _active_elements(sample: Sample) -> list[int]:
    """Elements with at least one token: the variables of the design."""
    return [i for i, group in enumerate(sample.elements.token_groups) if group]
