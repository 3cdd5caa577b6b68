"""Shared plumbing of the text task explainers: the configured attribution method and the last page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.output import AttributionOutput
from interpreto.model.sample import Model, Tokenizer
from interpreto.visualization.html import save_html, to_html


class TaskExplainer:
    """Base of the text task explainers: any attribution method drives them.

    Args:
        model: the Hugging Face model (never modified).
        tokenizer: its fast tokenizer (never modified).
        method: the attribution method class (`IntegratedGradients` by default).
        **method_kwargs: passed to the method (`n_perturbations`, `granularity`, `progress`, ...).
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        method: type[AttributionExplainer] = IntegratedGradients,
        **method_kwargs: Any,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.method = method
        self.method_kwargs = method_kwargs
        self.attributions: AttributionOutput | list[AttributionOutput] | None = None

    def attribution_method(self, score: Any = None) -> AttributionExplainer:
        """The configured method, explaining `score` when given (else `method_kwargs`' score)."""
        kwargs = dict(self.method_kwargs)
        if score is not None:
            kwargs["score"] = score
        return self.method(self.model, self.tokenizer, **kwargs)

    def visualize(self, path: str | Path | None = None) -> str:
        """The standalone HTML page of the last explanation; also written to `path` when given."""
        if self.attributions is None:
            raise RuntimeError("visualize() shows the last explanation: call the explainer first.")
        outputs = self.attributions if isinstance(self.attributions, list) else [self.attributions]
        if path is not None:
            save_html(outputs, path, title=type(self).__name__)
        return to_html(outputs, title=type(self).__name__)
