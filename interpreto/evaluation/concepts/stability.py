"""`Stability`: do fits of the same method with different seeds learn the same dictionary?"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationSource
from interpreto.evaluation.concepts.base import ConceptMetricResult

SIGNS = ("auto", "abs", "signed")


def _nonnegative_code_families() -> tuple[type, ...]:
    """Explainer classes whose codes are non-negative, so that `d` and `-d` are different concepts."""
    from interpreto.concepts.kmeans import KMeansConcepts
    from interpreto.concepts.nmf import ConvexNMFConcepts, NMFConcepts, SemiNMFConcepts
    from interpreto.concepts.sae import SAEConcepts

    return (SAEConcepts, NMFConcepts, SemiNMFConcepts, ConvexNMFConcepts, KMeansConcepts)


class Stability:
    """The similarity of dictionaries learned with different seeds (initialisation and data order). Higher
    is better; 1 means every fit finds the same concepts.

    For each pair of dictionaries `(D_a, D_b)`, the rows (concepts) are paired one to one by the Hungarian
    algorithm maximising the total similarity `s(d, d')`, and the pair scores the mean similarity of the matched
    rows (over `min(c_a, c_b)` matches). The value is the mean over all pairs, with their standard deviation in
    `details["std"]`. The similarity is the cosine:

    - `"abs"`: `|cos|`, for methods whose concepts have no sign (PCA, ICA, SVD, probes: `d` and `-d` with the
      opposite code are the same concept), so a sign-flipped copy scores 1 (Interpreto 0.5 used the signed
      cosine: a copy with half its signs flipped scored 0.596);
    - `"signed"`: `cos`, for methods with non-negative codes (SAEs, NMF family, k-means), where `-d` is a
      different concept;
    - `"auto"` (default): signed when every input is an explainer of those non-negative families or every
      dictionary is entrywise non-negative, `|cos|` otherwise (always for plain tensors with negative entries).

    A single dictionary is an error, not a stability of 1. `fit_and_compute` fits one explainer per seed.

    Paulo & Belrose 2025, "Sparse autoencoders trained on the same data learn different features",
    https://arxiv.org/abs/2501.16615.

    Args:
        sign: `"auto"`, `"abs"` or `"signed"` (see above).

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import Stability
        >>> dictionary = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
        >>> flipped = -dictionary[torch.tensor([3, 1, 0, 5, 4, 2])]  # permuted, signs flipped
        >>> round(Stability().compute([dictionary, flipped]).value, 6)
        1.0
    """

    name = "Stability"
    higher_is_better = True

    def __init__(self, sign: str = "auto"):
        self.sign = sign

    def compute(self, explainers: Sequence[ConceptExplainer | torch.Tensor]) -> ConceptMetricResult:
        """The mean matched similarity over every pair of `explainers`.

        Args:
            explainers: fitted explainers (their `dictionary` is compared) or `(nb_concepts, hidden)` tensors,
                at least two, of the same hidden size.

        Returns:
            A `ConceptMetricResult`: `per_concept` holds, for each concept of the first dictionary, its matched
            similarity averaged over the pairs it is in; `details` the per-pair values, their std, the
            similarity used and how many pairs were identical (a method that ignores its seed gives all).

        Raises:
            ValueError: fewer than two dictionaries, or different hidden sizes.
        """
        if self.sign not in SIGNS:
            raise ValueError(f"sign={self.sign!r} is unknown: use one of {list(SIGNS)}.")
        items = list(explainers)
        if len(items) < 2:
            raise ValueError(
                f"Stability compares dictionaries fitted with different seeds: got {len(items)}, pass at least "
                f"two (e.g. Stability.fit_and_compute(make_explainer, activations, seeds=(0, 1, 2)))."
            )
        dictionaries = [_dictionary(item) for item in items]
        dims = {d.shape[1] for d in dictionaries}
        if len(dims) != 1:
            raise ValueError(f"the dictionaries have different hidden sizes {sorted(dims)}.")
        signed = self._signed(items, dictionaries)
        pair_values, identical = [], 0
        first = torch.zeros(dictionaries[0].shape[0], dtype=torch.float64)
        first_pairs = 0
        for a, b in itertools.combinations(range(len(dictionaries)), 2):
            rows, matched = matched_similarity(dictionaries[a], dictionaries[b], signed=signed)
            pair_values.append(float(matched.mean()))
            identical += bool(torch.equal(dictionaries[a], dictionaries[b]))
            if a == 0:
                first[rows] += matched
                first_pairs += 1
        values = torch.tensor(pair_values, dtype=torch.float64)
        return ConceptMetricResult(
            self.name,
            float(values.mean()),
            self.higher_is_better,
            per_concept=first / first_pairs,
            details={
                "std": float(values.std()) if len(pair_values) > 1 else 0.0,
                "per_pair": pair_values,
                "n_dictionaries": len(dictionaries),
                "similarity": "cos" if signed else "|cos|",
                "identical_pairs": identical,
            },
        )

    def fit_and_compute(
        self,
        make_explainer: Callable[[], ConceptExplainer],
        activations: ActivationSource,
        seeds: Sequence[int] = (0, 1, 2),
        **fit_kwargs: Any,
    ) -> ConceptMetricResult:
        """Fits `make_explainer()` once per seed (`fit(activations, seed=seed, **fit_kwargs)`) and compares them.

        Args:
            make_explainer: builds a new, unfitted explainer (e.g. `lambda: PCAConcepts(None, nb_concepts=8)`).
            activations: what `ConceptExplainer.fit` accepts.
            seeds: at least two different seeds.
            **fit_kwargs: passed to every `fit` (`nb_epochs=`, `progress=False`, ...).
        """
        if len(set(seeds)) < 2 or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must hold at least two different seeds, each once, got {tuple(seeds)}.")
        fitted = [make_explainer().fit(activations, seed=seed, **fit_kwargs) for seed in seeds]
        result = self.compute(fitted)
        result.details["seeds"] = list(seeds)
        return result

    def _signed(self, items: list, dictionaries: list[torch.Tensor]) -> bool:
        if self.sign != "auto":
            return self.sign == "signed"
        families = _nonnegative_code_families()
        if all(isinstance(item, families) for item in items):
            return True
        return all(bool((d >= 0).all()) for d in dictionaries)


def matched_similarity(
    dictionary: torch.Tensor, other: torch.Tensor, signed: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs the rows of two dictionaries one to one (Hungarian algorithm) by cosine similarity.

    Args:
        dictionary: `(c_a, hidden)`.
        other: `(c_b, hidden)`.
        signed: use `cos` instead of `|cos|`.

    Returns:
        `(rows, similarity)`: the `min(c_a, c_b)` matched row indices of `dictionary` and their similarity,
        float64.
    """
    left = torch.nn.functional.normalize(dictionary.detach().double().cpu(), dim=1)
    right = torch.nn.functional.normalize(other.detach().double().cpu(), dim=1)
    cosine = left @ right.T
    similarity = (cosine if signed else cosine.abs()).numpy()
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return torch.from_numpy(rows), torch.from_numpy(np.asarray(similarity[rows, cols]))


def _dictionary(item: ConceptExplainer | torch.Tensor) -> torch.Tensor:
    if isinstance(item, ConceptExplainer):
        dictionary = item.dictionary
    elif isinstance(item, torch.Tensor):
        dictionary = item
    else:
        raise TypeError(
            f"pass fitted concept explainers or (nb_concepts, hidden) tensors, got {type(item).__name__}."
        )
    if dictionary.dim() != 2 or not math.prod(dictionary.shape):
        raise ValueError(
            f"a dictionary must be a non-empty (nb_concepts, hidden) tensor, got {tuple(dictionary.shape)}."
        )
    return dictionary.detach().double().cpu()
