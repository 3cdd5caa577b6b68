"""Input x Gradient (Shrikumar et al., 2016): first-order Taylor contribution of each input embedding."""

from __future__ import annotations

import torch

from interpreto.attribution.base import MethodResult
from interpreto.attribution.gradient import GradientExplainer


class InputXGradient(GradientExplainer):
    """Input x Gradient: `x_t . d f / d x_t` for each token embedding x_t, summed over an element's tokens.

    Signed: positive elements push the explained score up, negative ones down. One forward and backward pass.

    Args: see `AttributionExplainer`.

    Examples:
        >>> from interpreto import InputXGradient
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = InputXGradient(model, tokenizer, progress=False)("the movie was great")[0]
        >>> out.attributions.shape
        torch.Size([1, 4])
    """

    scores_input_first = True  # its only row is the input

    def rows(self, sample, inputs, baseline, generator):
        return inputs[None], torch.ones(1), inputs[None]

    def finish(self, task, sample, attributions, row_outputs, inputs, baseline) -> MethodResult:
        return MethodResult(attributions=attributions, scores=row_outputs[0])
