"""SmoothGrad (Smilkov et al., 2017): Input x Gradient averaged over noisy copies of the input."""

from __future__ import annotations

import torch

from interpreto.attribution.noise_tunnel import NoiseTunnelExplainer, text_noise


class SmoothGrad(NoiseTunnelExplainer):
    """SmoothGrad: the mean over noisy inputs of the Input x Gradient score.

    For draws `x'_s = x + eps_s`, `eps_s ~ N(0, sigma^2)` at text positions (special tokens untouched),
    `sigma = noise_std * rms(x)` with `rms(x)` the root mean square of the input's text embedding coordinates,

        smoothgrad(e) = 1/n sum_s a_s(e),    a_s(e) = sum_{t in e} x'_s,t . d f / d x_t (x'_s),

    the signed Input x Gradient score of element e at the noisy input (as captum's
    `NoiseTunnel(InputXGradient)` with `nt_type="smoothgrad"`), summed over the element's tokens. Signed:
    positive elements push the explained score up. Smilkov et al., "SmoothGrad: removing noise by adding
    noise", 2017 (https://arxiv.org/abs/1706.03825). One forward and backward pass per draw, in chunks of
    `batch_size` rows.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of noisy inputs (50).
        noise_std: the noise's standard deviation as a fraction of the input's embedding scale `rms(x)` (0.1).
        seed: seed of the noise (0): the same seed gives the same attributions.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.

    Examples:
        >>> from interpreto.attribution.smooth_grad import SmoothGrad
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explainer = SmoothGrad(model, tokenizer, n_perturbations=10, progress=False)
        >>> out = explainer("the movie was great")[0]
        >>> out.elements
        ['the', 'movie', 'was', 'great']
        >>> bool((explainer("the movie was great")[0].attributions == out.attributions).all())  # seeded
        True
    """

    def samples(self, inputs, baseline, text, generator) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = inputs[None] + text_noise(self.n_perturbations, inputs, text, self.noise_std, generator)
        return noisy, noisy
