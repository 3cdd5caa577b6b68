"""Explain an extractive question answering model: which words drive the predicted answer's start and end."""

from __future__ import annotations

from typing import Any

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.output import AttributionOutput
from interpreto.explainers.base import TaskExplainer
from interpreto.explainers.sequence import WordAttributions, pairs
from interpreto.model.classification import TextPair
from interpreto.model.question_answering import encode_question_context, is_question_answering
from interpreto.model.sample import Model, Tokenizer, check_text, max_model_length


class QuestionAnsweringExplainer(TaskExplainer):
    """Explains the predicted answer span of a `...ForQuestionAnswering` model.

    The model reads `[CLS] question [SEP] context [SEP]` (the tokenizer's pair encoding). The predicted span is
    the best one inside the context (`start <= end`, maximizing start logit + end logit); the explainer runs
    `method(model, tokenizer, **method_kwargs)((question, context))`, whose two targets are the start logit at
    the predicted start token and the end logit at the predicted end token. Elements are the words of the
    question, then of the context (explanation text `question + "\\n" + context`).

    Args:
        model: a `...ForQuestionAnswering` model. Never modified.
        tokenizer: its fast tokenizer. Never modified.
        method: an attribution method class (`IntegratedGradients` by default, `Occlusion`, `KernelShap`...).
        **method_kwargs: passed to the method: `n_perturbations`, `granularity`, `progress`, `score`...

    Attributes (set by each call):
        predicted_answer: the context substring of the predicted span.
        start_index, end_index: the predicted span's token positions in the pair encoding.
        start_attributions, end_attributions: `[(element, score), ...]` for the start and end logits.
        attributions: the method's `AttributionOutput` (row 0: start, row 1: end).

    Examples:
        >>> from transformers import BertForQuestionAnswering
        >>> from interpreto import Occlusion
        >>> from interpreto.explainers import QuestionAnsweringExplainer
        >>> from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
        >>> from interpreto.zoo.tiny import seeded_model, tiny_bert_config
        >>> tokenizer = bert_wordpiece_tokenizer()
        >>> model = seeded_model(BertForQuestionAnswering, tiny_bert_config(len(tokenizer)), seed=0)
        >>> explainer = QuestionAnsweringExplainer(model, tokenizer, method=Occlusion, progress=False)
        >>> result = explainer("who sat", "the cat sat")
        >>> [word for word, _ in result["start"]]
        ['who', 'sat', 'the', 'cat', 'sat']
        >>> explainer.predicted_answer in "the cat sat"
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
        self.predicted_answer: str | None = None
        self.start_index: int | None = None
        self.end_index: int | None = None

    def __call__(self, question: str, context: str) -> dict[str, WordAttributions]:
        """Attributions of the words of `question` and `context` for the predicted answer's start and end.

        Args:
            question: the question.
            context: the passage the answer is extracted from.

        Returns:
            `{"start": [(element, score), ...], "end": [(element, score), ...]}`.
        """
        check_text(question, "question")
        check_text(context, "context")
        if not is_question_answering(self.model):
            raise TypeError(
                f"model is a {type(self.model).__name__}: QuestionAnsweringExplainer needs a "
                f"...ForQuestionAnswering model."
            )
        self.attributions = self.attribution_method()((question, context))[0]
        self.start_index, self.end_index = self.attributions.targets
        self.predicted_answer = self._answer(question, context)
        return {"start": self.start_attributions, "end": self.end_attributions}

    @property
    def start_attributions(self) -> WordAttributions:
        """`[(element, score), ...]` for the start logit of the last explanation."""
        return pairs(self._last(), 0)

    @property
    def end_attributions(self) -> WordAttributions:
        """`[(element, score), ...]` for the end logit of the last explanation."""
        return pairs(self._last(), 1)

    def _last(self) -> AttributionOutput:
        if self.attributions is None:
            raise RuntimeError("no explanation yet: call the explainer on a question and a context first.")
        return self.attributions

    def _answer(self, question: str, context: str) -> str:
        """The context substring from the start token's first character to the end token's last one."""
        max_length = None
        if self.method_kwargs.get("truncation", False):
            max_length = max_model_length(self.model, self.tokenizer)
        item = TextPair(question, context)
        offsets = encode_question_context(self.tokenizer, item, max_length=max_length).offsets
        shift = len(item.text) - len(context)
        return context[offsets[self.start_index][0] - shift : offsets[self.end_index][1] - shift]
