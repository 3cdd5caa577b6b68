"""Explain a classifier that reads two texts together: cross-encoders, natural language inference."""

from __future__ import annotations

from typing import Any

import torch

from interpreto.explainers.sequence import SequenceClassificationExplainer, WordAttributions
from interpreto.model.classification import TextPair
from interpreto.model.sample import check_text
from interpreto.model.scores import ScoreFunction, resolve_score


class Negated:
    """A score function giving minus another one: attributions then point toward a lower score."""

    def __init__(self, score: str | ScoreFunction):
        self.function = resolve_score(score)
        self.__name__ = f"negated_{score if isinstance(score, str) else getattr(score, '__name__', 'custom')}"

    def __call__(self, values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        return -self.function(values, target_ids)


class PairwiseSequenceClassificationExplainer(SequenceClassificationExplainer):
    """Explains a classifier on a pair of texts, joined the model's way (`[CLS] text1 [SEP] text2 [SEP]` with
    `token_type_ids` for BERT), over the elements of both texts.

    The explanation's text is `text1 + "\\n" + text2` (see `interpreto.model.classification.TextPair`): element
    offsets of `text2` start after the line break. A single-logit model (`num_labels=1`, cross-encoders) is
    explained toward a high logit; `flip_sign=True` negates the explained score, so attributions point toward
    a low one (0.0 relevance).

    Args:
        model: a `...ForSequenceClassification` model trained on text pairs.
        tokenizer: its fast tokenizer.
        method: an attribution method class (`IntegratedGradients` by default).
        **method_kwargs: passed to the method (`n_perturbations`, `granularity`, `progress`, `score`...).

    Examples:
        >>> from interpreto.explainers import PairwiseSequenceClassificationExplainer
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier(num_labels=1)
        >>> explainer = PairwiseSequenceClassificationExplainer(model, tokenizer, n_perturbations=8, progress=False)
        >>> [word for word, _ in explainer("a cat sat", "the cat", flip_sign=True)]
        ['a', 'cat', 'sat', 'the', 'cat']
        >>> explainer.attributions.score
        'negated_logits'
    """

    def __call__(  # type: ignore[override]
        self,
        text1: str,
        text2: str,
        class_name: str | None = None,
        index: int | None = None,
        flip_sign: bool = False,
    ) -> WordAttributions:
        """Attributions of the elements of both texts for the predicted class, or the one named or indexed.

        Args:
            text1: the first text (query, premise).
            text2: the second text (passage, hypothesis).
            class_name: explain this label instead of the predicted class.
            index: explain this class index instead of the predicted class.
            flip_sign: explain minus the score (toward 0.0 for a single-logit model).

        Returns:
            `[(element, score), ...]`: elements of `text1`, then of `text2`.
        """
        check_text(text1, "text1")
        check_text(text2, "text2")
        score: Any = None
        if flip_sign:
            score = Negated(self.method_kwargs.get("score") or "logits")
        return self._explain(TextPair(text1, text2), class_name, index, score=score)
