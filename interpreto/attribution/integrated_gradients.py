"""Integrated Gradients (Sundararajan et al., 2017), with its completeness residual."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from interpreto.attribution.base import MethodResult
from interpreto.attribution.gradient import GradientExplainer
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Tokenizer

QUADRATURES = ("gausslegendre", "riemann_trapezoid", "riemann_middle")


def quadrature(n_steps: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes `alpha` in [0, 1] and weights summing to 1 for integrating over the straight path."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return torch.tensor((nodes + 1) / 2), torch.tensor(weights / 2)
    if method == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("n_perturbations must be at least 2 for riemann_trapezoid.")
        alphas = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        weights = torch.full((n_steps,), 1 / (n_steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return alphas, weights
    if method == "riemann_middle":
        return (torch.arange(n_steps, dtype=torch.float64) + 0.5) / n_steps, torch.full(
            (n_steps,), 1 / n_steps
        )
    raise ValueError(f"method={method!r} is unknown: use one of {QUADRATURES}.")


class IntegratedGradients(GradientExplainer):
    """Integrated Gradients: `(x - b) . integral_0^1 d f(b + a (x - b)) / d x da`, per token, summed per element.

    The integral is a quadrature over `n_perturbations` points of the straight path from the baseline b to the
    input x (Gauss-Legendre by default, as in captum). The baseline replaces every token of the text by the
    replacement token's embedding (the tokenizer's mask, else a space for causal LMs) and keeps special tokens, or is a
    constant embedding value or vector (`baseline=`). Signed, and complete: attributions sum to
    f(x) - f(b); `output.convergence_delta` holds `sum(attributions) - (f(x) - f(b))` for each target.
    With `split_point=`, x and b are the hidden states that layer outputs, as captum's
    `LayerIntegratedGradients`: b at text positions is the layer's output for the baseline input (the replacement
    token at every text position), and at special positions (`[CLS]`, `[SEP]`), which no element owns, the
    input's own, so that attributions still sum to f(x) - f(b).

    Args:
        model: a classifier or causal LM (see `AttributionExplainer`).
        tokenizer: its fast tokenizer.
        n_perturbations: number of points on the path (quadrature nodes).
        baseline: None (the replacement token's embedding), a float (that constant in every coordinate) or a
            tensor of shape `(hidden,)`, used at every text position.
        method: `"gausslegendre"`, `"riemann_trapezoid"` or `"riemann_middle"`.
        **kwargs: `granularity`, `batch_size`, `device`, `progress`, `score`, `truncation`,
            `replace_token_id`, `max_batch_tokens`, `split_point`, as in `AttributionExplainer`.

    Examples:
        >>> from interpreto import IntegratedGradients
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> out = IntegratedGradients(model, tokenizer, n_perturbations=50, progress=False)("a fine film")[0]
        >>> total = out.attributions.sum() - out.convergence_delta.sum()   # equals f(x) - f(b)
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 50,
        baseline: float | torch.Tensor | None = None,
        method: str = "gausslegendre",
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, **kwargs)
        self.n_perturbations = n_perturbations
        self.baseline_value = baseline
        self.method = method

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_integer("n_perturbations", self.n_perturbations)
        quadrature(max(self.n_perturbations, 2), self.method)

    def rows(self, sample, inputs: torch.Tensor, baseline: torch.Tensor, generator):
        alphas, weights = quadrature(self.n_perturbations, self.method)
        alphas = alphas.to(inputs.device, inputs.dtype)[:, None, None]
        difference = (inputs - baseline)[None]
        return baseline[None] + alphas * difference, weights, difference

    def finish(self, task, sample, attributions, row_outputs, inputs, baseline) -> MethodResult:
        with torch.inference_mode():
            ends = task.explained_scores(sample, torch.stack([inputs, baseline])).float().cpu()
        visible = sample.visible
        total = torch.where(visible, attributions, torch.zeros_like(attributions)).sum(-1)
        delta = total - (ends[0] - ends[1])
        return MethodResult(attributions=attributions, scores=ends[0], convergence_delta=delta)
