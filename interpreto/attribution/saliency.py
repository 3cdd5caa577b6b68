"""Saliency (Simonyan et al., 2014): how strongly the score reacts to each input embedding."""

from __future__ import annotations

import torch

from interpreto.attribution.base import MethodResult
from interpreto.attribution.gradient import GradientExplainer


class Saliency(GradientExplainer):
    """Saliency: the L2 norm of the score's gradient with respect to the input embeddings.

    For a token t with embedding x_t, `saliency(t) = || d f / d x_t ||_2`; an element's score is the L2 norm of
    the gradient over all its tokens' embeddings, `sqrt(sum_t ||d f / d x_t||^2)`. Unsigned: it tells how
    sensitive the score is to an element, not in which direction it pushes. One forward and backward pass.

    Args: see `AttributionExplainer`.

    Examples:
        >>> from interpreto import Saliency
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = Saliency(model, tokenizer, progress=False)("the movie was great")[0]
        >>> bool((out.attributions >= 0).all())
        True
    """

    scores_input_first = True  # its only row is the input

    element_reduction = "l2"

    def rows(self, sample, inputs, baseline, generator):
        return inputs[None], torch.ones(1), None

    def token_scores(self, gradients: torch.Tensor, factors: None) -> torch.Tensor:
        return gradients.float().norm(dim=-1)

    def finish(self, task, sample, attributions, row_outputs, inputs, baseline) -> MethodResult:
        return MethodResult(attributions=attributions, scores=row_outputs[0])
