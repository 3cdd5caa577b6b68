"""One input prepared for attribution, and the checks shared by the task wrappers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from interpreto.model.granularity import Elements

Model = PreTrainedModel
Tokenizer = PreTrainedTokenizerBase
Message = dict[str, str]
Inputs = str | list[str] | list[Message] | list[list[Message]]
"""A text, a chat (list of messages), or a list of them."""
Targets = int | str | list[Any] | torch.Tensor | None
"""Class indices or label names (classification), continuations as strings or token ids (generation)."""


@dataclass
class Sample:
    """One input, tokenized once, with its targets and elements.

    Every model call for a sample runs rows of this one sequence (the input, its perturbations or its gradient
    path points), so rows share one length and need no padding.

    Attributes:
        text: the text the element spans refer to (the prompt for generation, rendered if it was a chat).
        input_ids: `(seq,)` token ids fed to the model.
        maskable: `(seq,)` True where a token may be replaced by the baseline (not a special token).
        elements: labels, spans and token positions of the elements.
        target_ids: `(n_targets,)` class ids, or continuation token ids for generation.
        target_names: a readable name for each target.
        visible: `(n_targets, n_elements)` False where an element cannot influence a target (it comes at or after
            the scored token in generation); such attributions are NaN.
        model_inputs: other tensors the model takes, shape `(seq,)` (e.g. `token_type_ids`).
        n_prompt_elements: for generation, how many elements belong to the prompt.
        scores: `(n_targets,)` explained scores on the real input, when already computed.
        contrast_ids: `(n_targets,)` contrast token ids (generation): the explained score is then
            score(target) - score(contrast) at each step.
        contrast_names: a readable name for each contrast token.
        source: the input as the user gave it, JSON-ready, so that the sample can be prepared again (e.g. by the
            evaluation metrics): a text, a pair as `{"first", "second", "explain_second"}`, or a chat.
        predict_target: the target is the predicted class, still to be read from the first model call on the
            sample (which scores the input itself); `target_ids` holds a placeholder until then.
    """

    text: str
    input_ids: torch.Tensor
    maskable: torch.Tensor
    elements: Elements
    target_ids: torch.Tensor
    target_names: list[str]
    visible: torch.Tensor
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    n_prompt_elements: int | None = None
    scores: torch.Tensor | None = None
    contrast_ids: torch.Tensor | None = None
    contrast_names: list[str] | None = None
    source: Any = None
    predict_target: bool = False

    @property
    def n_targets(self) -> int:
        """Number of explained targets."""
        return int(self.target_ids.numel())

    @property
    def n_elements(self) -> int:
        """Number of elements shown to a reader."""
        return len(self.elements.labels)


def max_model_length(model, tokenizer) -> int | None:
    """The longest sequence the model takes, from its config and the tokenizer, or None if unknown."""
    limits = [getattr(model.config, "max_position_embeddings", None)]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit is not None and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    limits = [int(limit) for limit in limits if isinstance(limit, int) and limit > 0]
    return min(limits) if limits else None


def check_text(text, argument: str = "inputs") -> str:
    """Returns `text` if it is a non-blank string, else raises naming the argument."""
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a string or a list of strings, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError(f"{argument} contains an empty text: pass non-empty strings.")
    return text


def as_list(inputs, argument: str = "inputs") -> list:
    """Wraps a single input in a list; checks a list is not empty."""
    if isinstance(inputs, (str, dict)):
        return [inputs]
    if isinstance(inputs, tuple):
        inputs = list(inputs)
    if not isinstance(inputs, list):
        raise TypeError(f"{argument} must be a string or a list of strings, got {type(inputs).__name__}.")
    if not inputs:
        raise ValueError(f"{argument} is empty: pass at least one text.")
    return inputs


def per_input(value: Any, n_inputs: int, shared: bool, argument: str, entry: str) -> list:
    """One entry per input: `value` for every input when `shared` (a single input, None or one value meant for
    all), else `value` itself, a list that must have one entry per input (`entry` says what one looks like)."""
    if shared:
        return [value] * n_inputs
    if not isinstance(value, (list, tuple)) or len(value) != n_inputs:
        size = f"{len(value)} entries" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
        raise ValueError(
            f"{argument} has {size} for {n_inputs} inputs: give one entry per input ({entry}), "
            f"or a single one for all inputs."
        )
    return list(value)
