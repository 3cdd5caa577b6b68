"""GradientShap (Lundberg & Lee, 2017): expected gradients between random baselines and a noisy input."""

from __future__ import annotations

from typing import Any

import torch

from interpreto.attribution.noise_tunnel import NoiseTunnelExplainer, check_std, text_noise
from interpreto.model.sample import Model, Tokenizer


class GradientShap(NoiseTunnelExplainer):
    """GradientShap: Integrated Gradients' integrand averaged over random baselines, inputs and path points.

    Each draw s takes a noisy input `x'_s = x + eps_s`, a random baseline `b_s = b + eta_s` and a point
    `alpha_s ~ U(0, 1)` on the straight path between them (captum's definition):

        gradientshap(e) = 1/n sum_s sum_{t in e} (x'_s,t - b_s,t) . d f / d x_t (b_s + alpha_s (x'_s - b_s)).

    `eps_s ~ N(0, (noise_std rms(x))^2)` and `eta_s ~ N(0, (baseline_std rms(x))^2)` are Gaussian noise at text
    positions only (special tokens keep their embeddings, and get 0), `rms(x)` the root mean square of the
    input's text embedding coordinates; b is the replacement token's embedding at every text position, or a
    constant (`baseline=`). Signed, and complete in expectation: `E[sum_e gradientshap(e)] = E f(x') - E f(b_s)`,
    which is `f(x) - E f(b_s)` with `noise_std=0`. Lundberg & Lee, "A Unified Approach to Interpreting Model
    Predictions", 2017 (https://arxiv.org/abs/1705.07874). One forward and backward pass per draw. Draws come
    from the seeded generator in this order: all `eps`, all `eta`, all `alpha`.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of draws (50).
        noise_std: standard deviation of the noise on the input, as a fraction of `rms(x)` (0.0: captum's
            default `stdevs=0`; the input is then exact and completeness is `f(x) - E f(b_s)`).
        baseline: None (the replacement token's embedding), a float (that constant in every coordinate) or a
            tensor of shape `(hidden,)`, used at every text position.
        baseline_std: standard deviation of the noise on the baseline, as a fraction of `rms(x)` (0.1): the
            spread of the baseline distribution the expectation is taken over.
        seed: seed of the draws (0): the same seed gives the same attributions.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.

    Examples:
        >>> from interpreto.attribution.gradient_shap import GradientShap
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = GradientShap(model, tokenizer, n_perturbations=10, progress=False)("a fine film")[0]
        >>> out.elements
        ['a', 'fine', 'film']
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 50,
        noise_std: float = 0.0,
        baseline: float | torch.Tensor | None = None,
        baseline_std: float = 0.1,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(
            model, tokenizer, n_perturbations=n_perturbations, noise_std=noise_std, seed=seed, **kwargs
        )
        self.baseline_value = baseline
        self.baseline_std = baseline_std

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_std("baseline_std", self.baseline_std)
        value = self.baseline_value
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor))
        ):
            raise TypeError(f"baseline must be None, a float or a tensor of shape (hidden,), got {value!r}.")

    def samples(self, inputs, baseline, text, generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n_perturbations
        noisy_inputs = inputs[None] + text_noise(n, inputs, text, self.noise_std, generator)
        baselines = baseline[None] + text_noise(n, inputs, text, self.baseline_std, generator)
        alphas = torch.rand(n, generator=generator).to(inputs.device, inputs.dtype)[:, None, None]
        differences = noisy_inputs - baselines
        return baselines + alphas * differences, differences
