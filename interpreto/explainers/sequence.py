"""Explain a sequence classifier in one call, with transformers-interpret's call shapes."""

from __future__ import annotations

from typing import Any

import torch

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.output import AttributionOutput
from interpreto.explainers.base import TaskExplainer
from interpreto.model.classification import ClassificationTask, TextPair
from interpreto.model.granularity import Granularity
from interpreto.model.running import explaining
from interpreto.model.sample import Model, Tokenizer

WordAttributions = list[tuple[str, float]]
"""`[(element, score), ...]` in text order."""


class SequenceClassificationExplainer(TaskExplainer):
    """Explains the predicted (or a chosen) class of a `...ForSequenceClassification` model.

    A thin wrapper over an attribution method: `explainer(text)` runs `method(model, tokenizer,
    **method_kwargs)(text, class_index)` and keeps the result, so any method of `interpreto.attribution` can
    drive it.

    Args:
        model: a `...ForSequenceClassification` model. Never modified.
        tokenizer: its fast tokenizer. Never modified.
        method: an attribution method class (`IntegratedGradients` by default, `KernelShap`, `Occlusion`...).
        **method_kwargs: passed to the method: `n_perturbations`, `granularity`, `progress`, `score`...

    Attributes (set by each call):
        predicted_class_index: the class the model predicts.
        predicted_class_name: its label.
        pred_probs: the softmax probability of the explained class.
        attributions: the method's `AttributionOutput`.

    Examples:
        >>> from interpreto.explainers import SequenceClassificationExplainer
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explainer = SequenceClassificationExplainer(model, tokenizer, n_perturbations=8, progress=False)
        >>> [word for word, score in explainer("a fine film", class_name="positive")]
        ['a', 'fine', 'film']
        >>> explainer.predicted_class_name in ("negative", "positive")
        True
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        method: type[AttributionExplainer] = IntegratedGradients,
        **method_kwargs: Any,
    ):
        super().__init__(model, tokenizer, method, **method_kwargs)
        self.predicted_class_index: int | None = None
        self.predicted_class_name: str | None = None
        self.pred_probs: float | None = None

    def __call__(
        self, text: str, class_name: str | None = None, index: int | None = None
    ) -> WordAttributions:
        """Attributions of `text`'s elements for the predicted class, or the one named or indexed.

        Args:
            text: the text to explain.
            class_name: explain this label instead of the predicted class.
            index: explain this class index instead of the predicted class.

        Returns:
            `[(element, score), ...]` in text order.
        """
        return self._explain(text, class_name, index)

    @property
    def labels(self) -> dict[int, str]:
        """Class index -> label name."""
        return {
            i: self.model.config.id2label.get(i, f"LABEL_{i}") for i in range(self.model.config.num_labels)
        }

    def _explain(
        self, item: str | TextPair, class_name: str | None, index: int | None, score: Any = None
    ) -> WordAttributions:
        target = self._target(class_name, index)
        logits = class_logits(
            self.model, self.tokenizer, [item], self.method_kwargs.get("truncation", False)
        )[0]
        probabilities = logits.sigmoid() if logits.numel() == 1 else logits.softmax(-1)
        self.predicted_class_index = int(logits.argmax())
        self.predicted_class_name = self.labels[self.predicted_class_index]
        explained = self.predicted_class_index if target is None else target
        self.pred_probs = float(probabilities[explained])
        self.attributions = self.attribution_method(score)(item, explained)[0]
        return pairs(self.attributions)

    def _target(self, class_name: str | None, index: int | None) -> int | None:
        """The explained class index from `class_name` or `index`; None for the predicted class."""
        labels = self.labels
        if class_name is not None and index is not None:
            raise ValueError("give class_name or index, not both.")
        if class_name is not None:
            by_name = {name: i for i, name in labels.items()}
            if class_name not in by_name:
                raise ValueError(f"class_name={class_name!r} is unknown: valid labels are {list(by_name)}.")
            return by_name[class_name]
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(labels):
                raise IndexError(
                    f"index={index!r} is out of range: use 0..{len(labels) - 1} for the labels {labels}."
                )
        return index


def pairs(output: AttributionOutput, row: int = 0) -> WordAttributions:
    """`[(element, score), ...]` of one target row of an output."""
    return [
        (element, float(score))
        for element, score in zip(output.elements, output.attributions[row].tolist(), strict=True)
    ]


def class_logits(model: Model, tokenizer: Tokenizer, items: list, truncation: bool = False) -> torch.Tensor:
    """`(len(items), num_labels)` logits of texts or `TextPair`s, tokenized as the attribution pipeline does.

    Runs in eval mode and restores every module's mode afterwards.
    """
    task = ClassificationTask(model, tokenizer, truncation=truncation)
    samples = task.prepare(items, 0, Granularity.ALL_TOKENS)
    with explaining(model, None), torch.inference_mode():
        rows = [
            model(**task.model_kwargs(sample, input_ids=sample.input_ids[None])).logits[0]
            for sample in samples
        ]
    return torch.stack(rows).float().cpu()
