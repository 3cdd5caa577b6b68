"""SquareGrad (Hooker et al., 2019): the mean square of Input x Gradient over noisy copies of the input."""

from __future__ import annotations

import torch

from interpreto.attribution.smooth_grad import SmoothGrad


class SquareGrad(SmoothGrad):
    """SquareGrad: the mean over noisy inputs of the squared Input x Gradient score of each element.

    With the noisy inputs `x'_s` and element scores `a_s(e) = sum_{t in e} x'_s,t . d f / d x_t (x'_s)` of
    `SmoothGrad`,

        squaregrad(e) = 1/n sum_s a_s(e)^2,

    squared per element (after summing the element's token scores), as captum's `NoiseTunnel` with
    `nt_type="smoothgrad_sq"` does per input feature. Unsigned (>= 0): how strongly the element acts, not in
    which direction. Hooker et al., "A Benchmark for Interpretability Methods in Deep Neural Networks", 2019
    (https://arxiv.org/abs/1806.10758).

    Args: as `SmoothGrad` (`n_perturbations=50`, `noise_std=0.1`, `seed=0`).

    Examples:
        >>> from interpreto.attribution.square_grad import SquareGrad
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = SquareGrad(model, tokenizer, n_perturbations=10, progress=False)("the movie was great")[0]
        >>> bool((out.attributions >= 0).all())
        True
    """

    def reduce(self, row_scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.einsum("r,rte->te", weights.to(row_scores.dtype), row_scores.square())
