"""Occlusion (Zeiler & Fergus, 2014): the score lost when an element is removed."""

from __future__ import annotations

import torch

from interpreto.attribution.perturbation import PerturbationExplainer


class Occlusion(PerturbationExplainer):
    """Occlusion: `f(x) - f(x with the element's tokens replaced by the replacement token)`, one row per element.

    Exactly the model's own differences (no approximation), signed: positive when removing the element lowers
    the score. All rows of an input go through the model in batches under `torch.inference_mode()`.

    Args: see `AttributionExplainer`.

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = Occlusion(model, tokenizer, progress=False)("the movie was great")[0]
        >>> out.elements
        ['the', 'movie', 'was', 'great']
    """

    def masks(self, sample, generator) -> torch.Tensor:
        return torch.eye(sample.n_elements, dtype=torch.bool)

    def solve(self, sample, masks, scores, input_scores) -> torch.Tensor:
        return (input_scores[None] - scores).T
