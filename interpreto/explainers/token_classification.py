"""Explain a token classifier (named entities, part of speech): one explanation per labelled token."""

from __future__ import annotations

from typing import Any

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.explainers.base import TaskExplainer
from interpreto.explainers.sequence import pairs
from interpreto.model.granularity import Granularity
from interpreto.model.running import explaining
from interpreto.model.sample import Model, Tokenizer, check_text
from interpreto.model.token_classification import TokenClassificationTask, TokenSample, is_token_classifier

TokenAttributions = dict[int, dict[str, Any]]
"""`{token_position: {"label": ..., "token": ..., "attribution_scores": [(element, score), ...]}}`."""


class TokenClassificationExplainer(TaskExplainer):
    """Explains the label a `...ForTokenClassification` model predicts at each token.

    Each non-special token whose predicted label is not ignored is one target: its predicted label's logit at
    that token. The explainer runs `method(model, tokenizer, **method_kwargs)(text, positions)` once, so any
    attribution method drives it, and every target shares one set of perturbations or gradient paths.

    Args:
        model: a `...ForTokenClassification` model. Never modified.
        tokenizer: its fast tokenizer. Never modified.
        method: an attribution method class (`IntegratedGradients` by default, `Occlusion`, `KernelShap`...).
        **method_kwargs: passed to the method: `n_perturbations`, `granularity`, `progress`, `score`...

    Attributes (set by each call):
        input_tokens: the tokens of the text, special tokens included.
        predicted_labels: `{token_position: label}` for every non-special token.
        attributions: the method's `AttributionOutput` (one row per explained token), None if none was.

    Examples:
        >>> from transformers import BertForTokenClassification
        >>> from interpreto import Occlusion
        >>> from interpreto.explainers import TokenClassificationExplainer
        >>> from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
        >>> from interpreto.zoo.tiny import seeded_model, tiny_bert_config
        >>> tokenizer = bert_wordpiece_tokenizer()
        >>> model = seeded_model(BertForTokenClassification, tiny_bert_config(len(tokenizer), 3), seed=0)
        >>> explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
        >>> result = explainer("the cat sat")
        >>> sorted(result[1])
        ['attribution_scores', 'label', 'token']
        >>> [word for word, _ in result[1]["attribution_scores"]]
        ['the', 'cat', 'sat']
    """

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        method: type[AttributionExplainer] = IntegratedGradients,
        **method_kwargs: Any,
    ):
        super().__init__(model, tokenizer, method, **method_kwargs)
        self.input_tokens: list[str] | None = None
        self.predicted_labels: dict[int, str] | None = None

    def __call__(
        self,
        text: str,
        ignored_labels: list[str] | None = None,
        ignored_indexes: list[int] | None = None,
    ) -> TokenAttributions:
        """Attributions of `text`'s elements for the label predicted at each explained token.

        Args:
            text: the text to explain.
            ignored_labels: skip tokens predicted with these labels (e.g. `["O"]`).
            ignored_indexes: skip these token positions (in the tokenization with special tokens).

        Returns:
            `{token_position: {"label": ..., "token": ..., "attribution_scores": [(element, score), ...]}}` in
            token order; empty when every token is ignored.
        """
        check_text(text, "text")
        if not is_token_classifier(self.model):
            raise TypeError(
                f"model is a {type(self.model).__name__}: TokenClassificationExplainer needs a "
                f"...ForTokenClassification model."
            )
        task = TokenClassificationTask(
            self.model, self.tokenizer, truncation=self.method_kwargs.get("truncation", False)
        )
        ignored = self._ignored_labels(task, ignored_labels)
        sample = self._predictions(task, text)
        skipped = self._ignored_indexes(ignored_indexes, sample.input_ids.numel())
        labels = task.labels
        self.input_tokens = list(sample.tokens)
        self.predicted_labels = {
            int(position): labels[int(label)]
            for position, label in zip(sample.positions, sample.target_ids, strict=True)
        }
        explained = [
            position
            for position, label in self.predicted_labels.items()
            if label not in ignored and position not in skipped
        ]
        self.attributions = None
        if not explained:
            return {}
        self.attributions = self.attribution_method()(text, explained)[0]
        return {
            position: {
                "label": self.predicted_labels[position],
                "token": self.input_tokens[position],
                "attribution_scores": pairs(self.attributions, row),
            }
            for row, position in enumerate(explained)
        }

    def _predictions(self, task: TokenClassificationTask, text: str) -> TokenSample:
        """The text's sample with every non-special token and its predicted label, computed in eval mode."""
        with explaining(self.model, None):
            return task.prepare(text, None, Granularity.TOKEN)[0]

    @staticmethod
    def _ignored_labels(task: TokenClassificationTask, ignored_labels) -> set[str]:
        if ignored_labels is None:
            return set()
        if isinstance(ignored_labels, str):
            ignored_labels = [ignored_labels]
        valid = list(task.labels.values())
        unknown = [label for label in ignored_labels if label not in valid]
        if unknown:
            raise ValueError(f"ignored_labels: unknown labels {unknown}; the model's labels are {valid}.")
        return set(ignored_labels)

    @staticmethod
    def _ignored_indexes(ignored_indexes, length: int) -> set[int]:
        if ignored_indexes is None:
            return set()
        for index in ignored_indexes:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < length:
                raise IndexError(
                    f"ignored_indexes: {index!r} is not a token position of this text (0..{length - 1})."
                )
        return set(ignored_indexes)
