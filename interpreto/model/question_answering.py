"""Extractive question answering: explain the start and end logits of the answer span.

A `...ForQuestionAnswering` model gives, for every token of `[CLS] question [SEP] context [SEP]`, a start logit
and an end logit. Each sample has two targets: the start logit at the start position and the end logit at the
end position (by default the best span, `start <= end`, inside the context). Target ids are token positions,
so a score function reads them like class ids: `"logits"` gives the logit at the position, `"probabilities"`
its softmax over positions.
"""

from __future__ import annotations

from typing import Any

import torch

from interpreto.model.classification import PAIR_SEPARATOR, TextPair
from interpreto.model.granularity import Granularity, group_tokens
from interpreto.model.sample import Sample, Targets, check_text, per_input
from interpreto.model.task import Task
from interpreto.model.tokens import Encoding, as_id_tensor, encode

TARGET_KINDS = ("start", "end")


def is_question_answering(model) -> bool:
    """True for `...ForQuestionAnswering` models."""
    return type(model).__name__.endswith("ForQuestionAnswering")


def as_question_context(item) -> TextPair:
    """A `(question, context)` tuple or `TextPair`, checked non-empty."""
    if isinstance(item, tuple) and len(item) == 2:
        item = TextPair(*item)
    if not isinstance(item, TextPair):
        raise TypeError(
            f"inputs must be a (question, context) tuple, a TextPair or a list of them, got "
            f"{type(item).__name__}."
        )
    check_text(item.first, "question")
    check_text(item.second, "context")
    return TextPair(item.first, item.second)


def encode_question_context(tokenizer, item: TextPair, max_length: int | None = None) -> Encoding:
    """The model's pair encoding with offsets into `item.text` (the context's are shifted past the question)."""
    encoding = encode(
        tokenizer, item.first, add_special_tokens=True, max_length=max_length, text_pair=item.second
    )
    shift = len(item.first) + len(PAIR_SEPARATOR)
    for i, sequence in enumerate(encoding.sequence_ids):
        if sequence == 1:
            start, end = encoding.offsets[i]
            encoding.offsets[i] = (start + shift, end + shift)
    return encoding


def best_span(start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor) -> tuple[int, int]:
    """`(start, end)` maximizing `start_logits[start] + end_logits[end]` with `start <= end`, both `allowed`."""
    totals = start_logits[:, None] + end_logits[None, :]
    valid = torch.ones_like(totals, dtype=torch.bool).triu() & allowed[:, None] & allowed[None, :]
    flat = int(totals.masked_fill(~valid, float("-inf")).argmax())
    return divmod(flat, totals.shape[1])


class QuestionAnsweringTask(Task):
    """Explains the start and end logits of a `...ForQuestionAnswering` model.

    Inputs: a `(question, context)` tuple or `TextPair`, or a list of them; elements cover both texts (the
    displayed text is `question + "\\n" + context`). Targets per input: None (the predicted span) or a
    `(start, end)` pair of token positions.
    """

    name = "question_answering"
    default_score = "logits"

    def target_logits(self, sample: Sample, model_kwargs: dict) -> torch.Tensor:
        """Start and end logits over positions: `(rows, 2, seq)`."""
        outputs = self.model(**model_kwargs)
        return torch.stack([outputs.start_logits, outputs.end_logits], dim=1)

    def prepare(self, inputs, targets: Targets, granularity: Granularity, **kwargs: Any) -> list[Sample]:
        """Tokenizes each (question, context) pair and resolves its span."""
        if kwargs:
            raise TypeError(f"unexpected arguments for question answering: {sorted(kwargs)}.")
        single = isinstance(inputs, (tuple, TextPair))
        items = [as_question_context(item) for item in ([inputs] if single else list(inputs))]
        if not items:
            raise ValueError("inputs is empty: pass at least one (question, context) pair.")
        spans = per_input(
            targets,
            len(items),
            targets is None or _is_span(targets),
            "targets",
            "a (start, end) pair or None",
        )
        return [self._sample(item, target, granularity) for item, target in zip(items, spans, strict=True)]

    def _sample(self, item: TextPair, target, granularity: Granularity) -> Sample:
        encoding = self.encode_within_limit(
            lambda **limit: encode_question_context(self.tokenizer, item, **limit)
        )
        elements = group_tokens(item.text, encoding.tokens, encoding.offsets, encoding.is_text, granularity)
        if not elements.labels:
            raise ValueError(
                f"inputs: {item.text!r} has no token to explain at granularity {granularity.value}."
            )
        model_inputs = {}
        if encoding.token_type_ids is not None:
            model_inputs["token_type_ids"] = as_id_tensor(encoding.token_type_ids)
        sample = Sample(
            text=item.text,
            input_ids=as_id_tensor(encoding.input_ids),
            maskable=torch.tensor(encoding.is_text),
            elements=elements,
            target_ids=torch.zeros(len(TARGET_KINDS), dtype=torch.long),
            target_names=[],
            visible=torch.ones(len(TARGET_KINDS), len(elements.labels), dtype=torch.bool),
            model_inputs=model_inputs,
        )
        context = torch.tensor(
            [
                keep and sequence == 1
                for keep, sequence in zip(encoding.is_text, encoding.sequence_ids, strict=True)
            ]
        )
        if not context.any():
            raise ValueError("context: no context token is left after truncation: shorten the question.")
        sample.target_ids = torch.tensor(self._span(sample, target, context))
        sample.target_names = [
            f"{kind}: {encoding.tokens[position]}"
            for kind, position in zip(TARGET_KINDS, sample.target_ids.tolist(), strict=True)
        ]
        return sample

    def _span(self, sample: Sample, target, context: torch.Tensor) -> tuple[int, int]:
        """The explained `(start, end)` token positions: the predicted span when `target` is None."""
        if target is None:
            with torch.inference_mode():
                logits = self.target_logits(
                    sample, self.model_kwargs(sample, input_ids=sample.input_ids[None])
                )
            return best_span(logits[0, 0].float().cpu(), logits[0, 1].float().cpu(), context)
        if not _is_span(target):
            raise TypeError(f"targets: expected a (start, end) pair of token positions, got {target!r}.")
        length = sample.input_ids.numel()
        for position in target:
            if not 0 <= position < length:
                raise IndexError(f"targets: token position {position} is out of range 0..{length - 1}.")
        return int(target[0]), int(target[1])


def _is_span(target) -> bool:
    return (
        isinstance(target, (tuple, list))
        and len(target) == 2
        and all(isinstance(t, int) and not isinstance(t, bool) for t in target)
    )
