"""Token classification (named entities, part of speech): explain the label predicted at chosen tokens.

A `...ForTokenClassification` model gives label logits at every token. Each target is one token position; its
target id is the label explained there (the predicted one), so `"logits"` gives that label's logit at that
token and `"probabilities"` its softmax over labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from interpreto.model.granularity import Granularity, group_tokens
from interpreto.model.question_answering import QuestionAnsweringTask, is_question_answering
from interpreto.model.sample import Sample, Targets, as_list, check_text, per_input
from interpreto.model.task import Task
from interpreto.model.tokens import as_id_tensor, encode


def is_token_classifier(model) -> bool:
    """True for `...ForTokenClassification` models."""
    return type(model).__name__.endswith("ForTokenClassification")


@dataclass
class TokenSample(Sample):
    """A sample whose targets are token positions.

    Attributes:
        positions: `(n_targets,)` the token position each target is read at.
        tokens: the token strings of `input_ids`.
    """

    positions: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    tokens: list[str] = field(default_factory=list)


class TokenClassificationTask(Task):
    """Explains the label logits of a `...ForTokenClassification` model at chosen token positions.

    Targets per input: None (every non-special token, with its predicted label) or a list of token positions
    (each with its predicted label).
    """

    name = "token_classification"
    default_score = "logits"

    @property
    def labels(self) -> dict[int, str]:
        """Label index -> label name."""
        id2label = getattr(self.model.config, "id2label", None) or {}
        names = {int(k): str(v) for k, v in id2label.items()}
        return {i: names.get(i, f"LABEL_{i}") for i in range(int(self.model.config.num_labels))}

    def target_logits(self, sample: TokenSample, model_kwargs: dict) -> torch.Tensor:
        """Label logits at the targets' positions: `(rows, n_targets, n_labels)`."""
        logits = self.model(**model_kwargs).logits
        return logits[:, sample.positions.to(logits.device)]

    def prepare(self, inputs, targets: Targets, granularity: Granularity, **kwargs: Any) -> list[Sample]:
        """Tokenizes each text and resolves the explained token positions and their predicted labels."""
        if kwargs:
            raise TypeError(f"unexpected arguments for token classification: {sorted(kwargs)}.")
        single = isinstance(inputs, str)
        texts = [check_text(text) for text in as_list(inputs)]
        positions = per_input(
            targets, len(texts), single or targets is None, "targets", "a list of token positions or None"
        )
        return [
            self._sample(text, target, granularity) for text, target in zip(texts, positions, strict=True)
        ]

    def _sample(self, text: str, target, granularity: Granularity) -> TokenSample:
        encoding = self.encode_within_limit(
            lambda **limit: encode(self.tokenizer, text, add_special_tokens=True, **limit)
        )
        elements = group_tokens(text, encoding.tokens, encoding.offsets, encoding.is_text, granularity)
        if not elements.labels:
            raise ValueError(f"inputs: {text!r} has no token to explain at granularity {granularity.value}.")
        model_inputs = {}
        if encoding.token_type_ids is not None:
            model_inputs["token_type_ids"] = as_id_tensor(encoding.token_type_ids)
        positions = self._positions(target, encoding.is_text)
        sample = TokenSample(
            text=text,
            input_ids=as_id_tensor(encoding.input_ids),
            maskable=torch.tensor(encoding.is_text),
            elements=elements,
            target_ids=torch.zeros(len(positions), dtype=torch.long),
            target_names=[],
            visible=torch.ones(len(positions), len(elements.labels), dtype=torch.bool),
            model_inputs=model_inputs,
            positions=torch.tensor(positions, dtype=torch.long),
            tokens=list(encoding.tokens),
        )
        with torch.inference_mode():
            logits = self.target_logits(sample, self.model_kwargs(sample, input_ids=sample.input_ids[None]))
        sample.target_ids = logits[0].argmax(-1).cpu()
        labels = self.labels
        sample.target_names = [
            f"{encoding.tokens[position]} ({position}): {labels[label]}"
            for position, label in zip(positions, sample.target_ids.tolist(), strict=True)
        ]
        return sample

    @staticmethod
    def _positions(target, is_text: list[bool]) -> list[int]:
        """The explained token positions: every non-special token when `target` is None."""
        if target is None:
            return [i for i, keep in enumerate(is_text) if keep]
        if isinstance(target, int) and not isinstance(target, bool):
            target = [target]
        if not isinstance(target, (list, tuple)) or not target:
            raise ValueError(
                f"targets: expected None or a non-empty list of token positions, got {target!r}."
            )
        for position in target:
            if isinstance(position, bool) or not isinstance(position, int):
                raise TypeError(f"targets: token positions are integers, got {type(position).__name__}.")
            if not 0 <= position < len(is_text):
                raise IndexError(f"targets: token position {position} is out of range 0..{len(is_text) - 1}.")
        return [int(position) for position in target]


def token_level_task(model) -> type[Task] | None:
    """The task of a model whose outputs are per token (question answering, token classification), or None."""
    if is_question_answering(model):
        return QuestionAnsweringTask
    if is_token_classifier(model):
        return TokenClassificationTask
    return None
