"""Deletion and Insertion curves (Petsiuk et al., 2018, "RISE"), for text elements.

Deletion removes elements in decreasing order of attribution and reads the explained score after each step:
a faithful attribution removes the evidence first, so the score falls fast and the area under the curve is
small. Insertion starts from the input with every element removed and puts elements back in the same order:
the score rises fast and the area is large.
"""

from __future__ import annotations

from typing import Any

import torch

from interpreto.evaluation.base import AttributionMetric, removal_masks
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Tokenizer
from interpreto.model.scores import ScoreFunction


class Deletion(AttributionMetric):
    """Deletion curve and its normalized AUC. **Lower is better.**

    At step j of `n_steps` the `round(j / n_steps * n)` highest-attributed of the n elements that can influence
    the target are replaced by the replacement token (the mask, else a space for causal LMs), so the curve has
    `n_steps + 1` points, from the input (fraction 0) to every element removed (fraction 1). The AUC is the
    trapezoid area over the fraction axis [0, 1]: the curve's mean height, in the score's units (between 0 and 1
    for probabilities). `evaluate(explanations, order="random", seed=0)` gives the random-order reference.

    Args:
        model: the explained classifier or causal LM (never modified).
        tokenizer: its fast tokenizer.
        n_steps: number of removal steps.
        score: the score read on each row (`"probabilities"` by default, `"logits"`, `"log_probabilities"`...).
        **kwargs: `batch_size`, `device`, `progress`, `replace_token_id`, `max_batch_tokens`, `truncation`
            (see `AttributionMetric`).

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.evaluation import Deletion
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explanations = Occlusion(model, tokenizer, progress=False)(["a fine film", "dull and long"])
        >>> result = Deletion(model, tokenizer, n_steps=4, progress=False).evaluate(explanations)
        >>> result.curve.shape, result.higher_is_better
        (torch.Size([5]), False)
    """

    name = "Deletion"
    higher_is_better = False
    x_label = "fraction of elements removed"
    keep_ranked = False

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_steps: int = 20,
        score: str | ScoreFunction | None = "probabilities",
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, score=score, **kwargs)
        self.n_steps = n_steps

    def _check_parameters(self, order: str) -> None:
        super()._check_parameters(order)
        check_integer("n_steps", self.n_steps)

    def steps(self) -> torch.Tensor:
        return torch.linspace(0, 1, self.n_steps + 1, dtype=torch.float64)

    def masks(self, ranking: torch.Tensor, n_elements: int, generator: torch.Generator) -> torch.Tensor:
        counts = [int(fraction * len(ranking) + 0.5) for fraction in self.steps().tolist()]
        return removal_masks(ranking, counts, n_elements, keep=self.keep_ranked)

    def reduce(self, input_score, row_scores, ranking, masks, attributions):
        curve = row_scores.double()
        return float(torch.trapezoid(curve, self.steps())), curve


class Insertion(Deletion):
    """Insertion curve and its normalized AUC. **Higher is better.**

    Starts from the input with every element that can influence the target replaced (fraction 0), then puts back
    the `round(j / n_steps * n)` highest-attributed elements at step j, up to the full input (fraction 1). The
    AUC is the trapezoid area over the fraction axis [0, 1]. Arguments as `Deletion`.

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.evaluation import Insertion
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explanations = Occlusion(model, tokenizer, progress=False)(["a fine film"])
        >>> Insertion(model, tokenizer, n_steps=3, progress=False).evaluate(explanations).higher_is_better
        True
    """

    name = "Insertion"
    higher_is_better = True
    x_label = "fraction of elements inserted"
    keep_ranked = True
