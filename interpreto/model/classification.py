"""Sequence classification: explain one or several classes of each input text or text pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from interpreto.model.granularity import Granularity, group_tokens
from interpreto.model.sample import Inputs, Sample, Targets, as_list, check_text, per_input
from interpreto.model.task import Task
from interpreto.model.tokens import Encoding, as_id_tensor, encode

PAIR_SEPARATOR = "\n"
"""Joins the two texts of a `TextPair` into the displayed text; the model never sees it."""


@dataclass(frozen=True)
class TextPair:
    """Two texts a classifier reads together (NLI premise and hypothesis, cross-encoder query and passage).

    The model gets the tokenizer's pair encoding (`[CLS] first [SEP] second [SEP]` with `token_type_ids` for
    BERT). Explanations refer to the displayed text `first + "\\n" + second`: offsets of elements of `second`
    are shifted by `len(first) + 1`, so no element spans both texts.

    Attributes:
        first: the first text (premise, query).
        second: the second text (hypothesis, passage).
        explain_second: False holds the second text fixed, like special tokens: never perturbed, kept in
            baselines, and not among the elements (zero-shot classification explains only the premise).
    """

    first: str
    second: str
    explain_second: bool = True

    @property
    def text(self) -> str:
        """The displayed text that element offsets refer to."""
        return self.first + PAIR_SEPARATOR + self.second

    def to_dict(self) -> dict:
        """A JSON-ready dict; `TextPair(**pair.to_dict())` rebuilds the pair."""
        return {"first": self.first, "second": self.second, "explain_second": self.explain_second}


def _check_input(item) -> str | TextPair:
    """A text, or a pair from a `TextPair` or a `(first, second)` tuple of two texts."""
    if isinstance(item, tuple) and len(item) == 2:
        item = TextPair(*item)
    if isinstance(item, TextPair):
        check_text(item.first, "inputs (first text of a pair)")
        check_text(item.second, "inputs (second text of a pair)")
        return item
    return check_text(item)


class ClassificationTask(Task):
    """Explains the scores of `...ForSequenceClassification` models (logits by default).

    Targets per input: None (the predicted class), a class index, a label name, or a list of them.
    """

    name = "classification"
    default_score = "logits"

    @property
    def labels(self) -> dict[int, str]:
        """Class index -> label name."""
        id2label = getattr(self.model.config, "id2label", None) or {}
        return {int(k): str(v) for k, v in id2label.items()}

    @property
    def n_classes(self) -> int:
        """Number of classes the model outputs."""
        return int(self.model.config.num_labels)

    def target_logits(self, sample: Sample, model_kwargs: dict) -> torch.Tensor:
        """Class logits, repeated for each target: `(rows, n_targets, n_classes)` (a view). For a sample whose
        target is the predicted class, the first call's first row (the input) decides it."""
        logits = self.model(**model_kwargs).logits
        if sample.predict_target:
            self._set_predicted(sample, logits[:1].detach())
        return logits.unsqueeze(1).expand(-1, sample.n_targets, -1)

    def label_name(self, index: int) -> str:
        """The class's name from `config.id2label`, else `LABEL_<index>`."""
        return self.labels.get(index, f"LABEL_{index}")

    def _set_predicted(self, sample: Sample, input_logits: torch.Tensor) -> None:
        """Sets the target to the class the input's logits `(1, n_classes)` predict, with its name and score."""
        predicted = int(input_logits[0].argmax())
        sample.target_ids = torch.tensor([predicted])
        sample.target_names = [self.label_name(predicted)]
        values = input_logits.float()[:, None, :]
        sample.scores = self.score_function(values, sample.target_ids.to(values.device))[0].cpu()
        sample.predict_target = False

    def prepare(
        self, inputs: Inputs, targets: Targets, granularity: Granularity, **kwargs: Any
    ) -> list[Sample]:
        """Tokenizes each text and resolves its targets.

        Args:
            inputs: a text, a `TextPair`, or a list of texts, `TextPair`s or `(first, second)` tuples.
            targets: for a single text: None, an index, a label name or a list of them; for a list of texts:
                one of those for all texts, or a list with one entry per text.
            granularity: how tokens are grouped into elements.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments for a classifier: {sorted(kwargs)}.")
        single = isinstance(inputs, (str, TextPair))
        texts = [
            _check_input(item) for item in ([inputs] if isinstance(inputs, TextPair) else as_list(inputs))
        ]
        targets_per_input = per_input(
            targets,
            len(texts),
            single or targets is None or isinstance(targets, (int, str)),
            "targets",
            "an index, a label name, a list of them, or None",
        )
        return [
            self._sample(text, target, granularity)
            for text, target in zip(texts, targets_per_input, strict=True)
        ]

    def _class_index(self, target) -> int:
        labels = self.labels
        if isinstance(target, torch.Tensor) and target.numel() == 1:
            target = target.item()
        if isinstance(target, str):
            by_name = {name: index for index, name in labels.items()}
            if target not in by_name:
                raise ValueError(f"targets: unknown label {target!r}; valid labels are {sorted(by_name)}.")
            return by_name[target]
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"targets: expected a class index or a label name, got {type(target).__name__}.")
        if not 0 <= target < self.n_classes:
            raise IndexError(
                f"targets: class index {target} is out of range for a model with {self.n_classes} classes "
                f"(0..{self.n_classes - 1})."
            )
        return target

    def _sample(self, item: str | TextPair, target, granularity: Granularity) -> Sample:
        encoding = self.encode_within_limit(lambda **limit: self._encode(item, **limit))
        text = item.text if isinstance(item, TextPair) else item
        elements = group_tokens(text, encoding.tokens, encoding.offsets, encoding.is_text, granularity)
        if not elements.labels:
            raise ValueError(f"inputs: {text!r} has no token to explain at granularity {granularity.value}.")
        model_inputs = {}
        if encoding.token_type_ids is not None:
            model_inputs["token_type_ids"] = as_id_tensor(encoding.token_type_ids)
        sample = Sample(
            text=text,
            input_ids=as_id_tensor(encoding.input_ids),
            maskable=torch.tensor(encoding.is_text),
            elements=elements,
            target_ids=torch.zeros(0, dtype=torch.long),
            target_names=[],
            visible=torch.ones(0, len(elements.labels), dtype=torch.bool),
            model_inputs=model_inputs,
            source=item.to_dict() if isinstance(item, TextPair) else item,
        )
        self._resolve_targets(sample, target)
        return sample

    def _encode(self, item: str | TextPair, max_length: int | None = None) -> Encoding:
        """Tokenizes a text, or a pair the model's way with offsets into `TextPair.text`."""
        if not isinstance(item, TextPair):
            return encode(self.tokenizer, item, add_special_tokens=True, max_length=max_length)
        encoding = encode(
            self.tokenizer, item.first, add_special_tokens=True, max_length=max_length, text_pair=item.second
        )
        shift = len(item.first) + len(PAIR_SEPARATOR)
        for i, sequence in enumerate(encoding.sequence_ids):
            if sequence == 1:
                start, end = encoding.offsets[i]
                encoding.offsets[i] = (start + shift, end + shift)
                encoding.is_text[i] = encoding.is_text[i] and item.explain_second
        return encoding

    def _resolve_targets(self, sample: Sample, target) -> None:
        """Fills target ids and names; a None target is the class the model predicts (read now, or by the first
        model call when `defer_prediction` is set)."""
        if target is None:
            sample.target_ids = torch.zeros(1, dtype=torch.long)
            sample.predict_target = True
            sample.visible = torch.ones(1, sample.n_elements, dtype=torch.bool)
            if not self.defer_prediction:
                with (
                    torch.no_grad()
                ):  # not inference_mode: the target ids set here index tensors under autograd
                    self.target_logits(sample, self.model_kwargs(sample, input_ids=sample.input_ids[None]))
            return
        many = isinstance(target, (list, tuple)) or (isinstance(target, torch.Tensor) and target.numel() > 1)
        indices = [self._class_index(t) for t in (target if many else [target])]
        if not indices:
            raise ValueError("targets: an empty list was given for an input: pass at least one class.")
        sample.target_ids = torch.tensor(indices)
        sample.target_names = [self.label_name(int(i)) for i in sample.target_ids]
        sample.visible = torch.ones(sample.n_targets, sample.n_elements, dtype=torch.bool)
