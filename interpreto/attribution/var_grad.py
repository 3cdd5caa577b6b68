"""VarGrad (Adebayo et al., 2018): the variance of Input x Gradient over noisy copies of the input."""

from __future__ import annotations

import torch

from interpreto.attribution.smooth_grad import SmoothGrad


class VarGrad(SmoothGrad):
    """VarGrad: the variance over noisy inputs of the Input x Gradient score of each element.

    With the noisy inputs `x'_s` and element scores `a_s(e) = sum_{t in e} x'_s,t . d f / d x_t (x'_s)` of
    `SmoothGrad`,

        vargrad(e) = 1/n sum_s (a_s(e) - m(e))^2,    m(e) = 1/n sum_s a_s(e),

    the population variance (divided by n, as captum's `NoiseTunnel` with `nt_type="vargrad"`), taken per
    element after summing the element's token scores. Unsigned (>= 0): how unstable the element's score is
    under noise. Adebayo et al., "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to
    Parameter Values", 2018 (https://arxiv.org/abs/1810.03307).

    Args: as `SmoothGrad` (`n_perturbations=50`, at least 2; `noise_std=0.1`, `seed=0`).

    Examples:
        >>> from interpreto.attribution.var_grad import VarGrad
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = VarGrad(model, tokenizer, n_perturbations=10, progress=False)("the movie was great")[0]
        >>> bool((out.attributions >= 0).all())
        True
    """

    min_perturbations = 2

    def reduce(self, row_scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        weights = weights.to(row_scores.dtype)[:, None, None]
        mean = (weights * row_scores).sum(0)
        return (weights * (row_scores - mean).square()).sum(0)
