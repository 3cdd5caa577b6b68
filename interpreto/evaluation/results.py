"""The result of a faithfulness metric over a list of explanations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class MetricResult:
    """One metric evaluated on a list of explanations.

    Attributes:
        metric: the metric's name (`"Deletion"`, `"Comprehensiveness"`, ...).
        per_input: `(n_inputs,)` the metric's value for each explanation (the mean over its targets: classes, or
            continuation tokens for generation).
        higher_is_better: True when a larger value means a more faithful attribution.
        order: how elements were ranked: `"attribution"` (decreasing attribution), `"reverse"` or `"random"`.
        score: the model score read (`"probabilities"`, `"logits"`, ...).
        steps: the x values of the curve, e.g. fractions of elements removed (None for metrics without one).
        per_input_curves: `(n_inputs, n_points)` each explanation's curve (None for metrics without one).
        x_label: what `steps` measures, for plots.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import MetricResult
        >>> result = MetricResult("Deletion", torch.tensor([0.2, 0.4]), higher_is_better=False)
        >>> round(result.value, 2), result.higher_is_better
        (0.3, False)
    """

    metric: str
    per_input: torch.Tensor
    higher_is_better: bool
    order: str = "attribution"
    score: str = "probabilities"
    steps: torch.Tensor | None = None
    per_input_curves: torch.Tensor | None = None
    x_label: str = ""

    @property
    def value(self) -> float:
        """The mean over explanations (NaN values, from targets the metric cannot score, left out)."""
        return float(torch.nanmean(self.per_input.double())) if self.per_input.numel() else math.nan

    @property
    def auc(self) -> float:
        """For curve metrics (Deletion, Insertion): the mean normalized area under the curve (same as `value`)."""
        return self.value

    @property
    def curve(self) -> torch.Tensor | None:
        """The mean curve over explanations, `(n_points,)`, or None for metrics without one."""
        if self.per_input_curves is None:
            return None
        return torch.nanmean(self.per_input_curves, dim=0)

    @property
    def ci95(self) -> float:
        """Half-width of the normal 95% confidence interval of `value` (1.96 standard errors)."""
        values = self.per_input[~torch.isnan(self.per_input)].double()
        if values.numel() < 2:
            return math.nan
        return float(1.96 * values.std() / math.sqrt(values.numel()))

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        curves = self.per_input_curves
        return {
            "metric": self.metric,
            "value": self.value,
            "ci95": self.ci95,
            "higher_is_better": self.higher_is_better,
            "order": self.order,
            "score": self.score,
            "per_input": _floats(self.per_input),
            "steps": None if self.steps is None else _floats(self.steps),
            "curve": None if curves is None else _floats(self.curve),
            "per_input_curves": None if curves is None else [_floats(row) for row in curves],
            "x_label": self.x_label,
        }

    def plot(self, ax=None, label: str | None = None):
        """Draws the mean curve (or, for metrics without a curve, a histogram of the per-input values) on a
        matplotlib axis and returns it."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        label = label or f"{self.metric} ({self.order})"
        if self.curve is None:
            ax.hist(self.per_input[~torch.isnan(self.per_input)].numpy(), bins=20, alpha=0.6, label=label)
            ax.set_xlabel(f"{self.metric} per input")
            ax.set_ylabel("inputs")
        else:
            ax.plot(self.steps.numpy(), self.curve.numpy(), marker="o", markersize=3, label=label)
            ax.set_xlabel(self.x_label)
            ax.set_ylabel(self.score)
        better = "higher" if self.higher_is_better else "lower"
        ax.set_title(f"{self.metric}: {better} is better")
        ax.legend()
        return ax


def _floats(values: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.double().flatten().tolist()]
