"""Comprehensiveness and Sufficiency (ERASER, DeYoung et al., 2020) and AOPC (Samek et al., 2017).

All three compare the explained score of the input, f(x), with the score after removing elements ranked by the
attribution. ERASER averages over top-k fractions ("AOPC over bins"); Samek's AOPC over the first k elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from interpreto.evaluation.base import AttributionMetric, removal_masks
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Tokenizer
from interpreto.model.scores import ScoreFunction

ERASER_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


class Comprehensiveness(AttributionMetric):
    """How much the score drops when the top-k elements are removed. **Higher is better.**

    For each fraction q, the `ceil(q * n)` highest-attributed elements are removed (n: elements that can
    influence the target) and `f(x) - f(x without them)` is read; the value is the mean over fractions, as in
    ERASER. `result.curve` holds the mean drop per fraction.

    Args:
        model: the explained classifier or causal LM (never modified).
        tokenizer: its fast tokenizer.
        fractions: the top-k fractions, each in (0, 1].
        score: the score read (`"probabilities"` by default).
        **kwargs: `batch_size`, `device`, `progress`, `replace_token_id`, `max_batch_tokens`, `truncation`.

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.evaluation import Comprehensiveness
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explanations = Occlusion(model, tokenizer, progress=False)(["a fine film"])
        >>> result = Comprehensiveness(model, tokenizer, progress=False).evaluate(explanations)
        >>> result.steps.tolist()
        [0.01, 0.05, 0.1, 0.2, 0.5]
    """

    name = "Comprehensiveness"
    higher_is_better = True
    x_label = "top-k fraction removed"
    keep_ranked = False

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        fractions: Sequence[float] = ERASER_FRACTIONS,
        score: str | ScoreFunction | None = "probabilities",
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, score=score, **kwargs)
        self.fractions = fractions

    def _check_parameters(self, order: str) -> None:
        super()._check_parameters(order)
        fractions = list(self.fractions)
        if not fractions or not all(isinstance(q, (int, float)) and 0 < q <= 1 for q in fractions):
            raise ValueError(
                f"fractions must be a non-empty list of numbers in (0, 1], got {self.fractions!r}."
            )

    def steps(self) -> torch.Tensor:
        return torch.tensor(list(self.fractions), dtype=torch.float64)

    def masks(self, ranking: torch.Tensor, n_elements: int, generator: torch.Generator) -> torch.Tensor:
        counts = [min(len(ranking), math.ceil(q * len(ranking) - 1e-9)) for q in self.fractions]
        return removal_masks(ranking, counts, n_elements, keep=self.keep_ranked)

    def reduce(self, input_score, row_scores, ranking, masks, attributions):
        drops = (input_score - row_scores).double()
        return float(drops.mean()), drops


class Sufficiency(Comprehensiveness):
    """How much the score drops when only the top-k elements are kept. **Lower is better.**

    For each fraction q, every element but the `ceil(q * n)` highest-attributed is removed and
    `f(x) - f(only them)` is read; the value is the mean over fractions, as in ERASER. Arguments as
    `Comprehensiveness`.
    """

    name = "Sufficiency"
    higher_is_better = False
    x_label = "top-k fraction kept"
    keep_ranked = True


class AOPC(AttributionMetric):
    """Area over the perturbation curve (Samek et al., 2017), most relevant first. **Higher is better.**

    `AOPC = 1 / (K + 1) * sum_{k=0..K} (f(x) - f(x without its k highest-attributed elements))`, with
    `K = min(max_elements, n)`. `result.curve` holds the mean drop after k = 0..max_elements removals (NaN past
    an input's n).

    Args:
        model: the explained classifier or causal LM (never modified).
        tokenizer: its fast tokenizer.
        max_elements: the largest number of elements removed, K.
        score: the score read (`"probabilities"` by default).
        **kwargs: `batch_size`, `device`, `progress`, `replace_token_id`, `max_batch_tokens`, `truncation`.

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.evaluation import AOPC
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explanations = Occlusion(model, tokenizer, progress=False)(["a fine film"])
        >>> AOPC(model, tokenizer, max_elements=2, progress=False).evaluate(explanations).curve.shape
        torch.Size([3])
    """

    name = "AOPC"
    higher_is_better = True
    x_label = "elements removed"

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        max_elements: int = 10,
        score: str | ScoreFunction | None = "probabilities",
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, score=score, **kwargs)
        self.max_elements = max_elements

    def _check_parameters(self, order: str) -> None:
        super()._check_parameters(order)
        check_integer("max_elements", self.max_elements)

    def steps(self) -> torch.Tensor:
        return torch.arange(self.max_elements + 1, dtype=torch.float64)

    def masks(self, ranking: torch.Tensor, n_elements: int, generator: torch.Generator) -> torch.Tensor:
        return removal_masks(ranking, range(min(self.max_elements, len(ranking)) + 1), n_elements)

    def reduce(self, input_score, row_scores, ranking, masks, attributions):
        drops = (input_score - row_scores).double()
        curve = torch.full((self.max_elements + 1,), math.nan, dtype=torch.float64)
        curve[: len(drops)] = drops
        return float(drops.mean()), curve
