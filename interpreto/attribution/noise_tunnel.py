"""Noise-tunnel gradient methods: gradients at random points around the input, combined over the draws.

Each of `n_perturbations` draws s gives a point p_s where the gradient is taken and a factor v_s it is
multiplied by; the draw's token scores are `v_s,t . d f / d x_t (p_s)`, summed into element scores, and
`reduce` combines the draws' element scores (a mean, a mean of squares, a variance). SmoothGrad, SquareGrad
and VarGrad take the gradient at a noisy input and multiply it by that input; GradientShap takes it at a random
point between a noisy baseline and a noisy input, and multiplies it by their difference.

Noise is Gaussian, drawn on CPU from the explainer's seeded generator (same seed, same numbers) and moved to
the embeddings' device, at text positions only: special tokens keep their embeddings. Its standard deviation
is relative to the input: `sigma = noise_std * rms(x)`, with `rms(x)` the root mean square of the input's
embedding coordinates over its text positions, so that a token's noise vector has about `noise_std` times the
norm of a typical token embedding, on any model.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch

from interpreto.attribution.gradient import GradientExplainer
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Tokenizer


def embedding_scale(inputs: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """`rms(x)`: root mean square of the embedding coordinates at text positions (all positions if none)."""
    values = inputs[text] if bool(text.any()) else inputs
    return values.float().square().mean().sqrt()


def text_noise(
    n_rows: int, inputs: torch.Tensor, text: torch.Tensor, std: float, generator: torch.Generator
) -> torch.Tensor:
    """`(n_rows, seq, hidden)` Gaussian noise of standard deviation `std * rms(x)` at text positions, 0 elsewhere.

    Drawn for every position (so the draw does not depend on which positions are text), then masked.
    """
    noise = torch.randn((n_rows, *inputs.shape), generator=generator)
    sigma = float(std) * embedding_scale(inputs, text).cpu()
    noise = noise * sigma * text.cpu()[None, :, None]
    return noise.to(inputs.device, inputs.dtype)


def check_std(name: str, value: Any) -> None:
    """Raises unless `value` is a finite non-negative number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= float(value) < float("inf"):
        raise ValueError(
            f"{name} must be a non-negative number (a fraction of the embedding scale, e.g. 0.1), got {value!r}."
        )


class NoiseTunnelExplainer(GradientExplainer):
    """Base of the sampled gradient methods. Subclasses define `samples` and may override `reduce`.

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of random draws.
        noise_std: standard deviation of the Gaussian noise added to the input's text positions, as a fraction
            of the input's embedding scale `rms(x)`.
        seed: seed of the draws: the same seed gives the same attributions.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, as in `AttributionExplainer`.
    """

    min_perturbations = 1

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 50,
        noise_std: float = 0.1,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, **kwargs)
        self.n_perturbations = n_perturbations
        self.noise_std = noise_std
        self.seed = seed

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_integer("n_perturbations", self.n_perturbations, minimum=self.min_perturbations)
        check_std("noise_std", self.noise_std)
        check_integer("seed", self.seed, minimum=0)

    def samples(
        self, inputs: torch.Tensor, baseline: torch.Tensor, text: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Points where gradients are taken and the factors they are multiplied by, both
        `(n_perturbations, seq, hidden)`; `text` `(seq,)` is True at text positions."""
        raise NotImplementedError

    def rows(self, sample, inputs, baseline, generator):
        points, factors = self.samples(inputs, baseline, sample.maskable.to(inputs.device), generator)
        return points, torch.full((points.shape[0],), 1.0 / points.shape[0]), factors
