"""Task wrappers: what a model explains, and how rows of one sample go through it.

A task turns user inputs and targets into `Sample`s, and turns rows of one sample (token ids, input
embeddings, or the hidden states of its `layer`, all of the sample's length) into the explained scores, shape
`(rows, n_targets)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
)

from interpreto.model.granularity import Granularity
from interpreto.model.layer import Layer
from interpreto.model.sample import Inputs, Model, Sample, Targets, Tokenizer, max_model_length
from interpreto.model.scores import ScoreFunction, resolve_score
from interpreto.model.tokens import Encoding, check_length, check_model_and_tokenizer


class Task:
    """Shared plumbing of the task wrappers: device, embeddings and batched model calls.

    Args:
        model: the Hugging Face model (never modified).
        tokenizer: its fast tokenizer (never modified).
        score: name of a score function in `interpreto.model.scores.SCORES`, or a function.
        truncation: cut inputs longer than the model allows instead of raising.

    Attributes:
        layer: where explanations attribute (set by the explainer for `split_point=`): None for the input
            embeddings, else the `Layer` whose output hidden states `scores(activations=...)` replace.
    """

    name = "task"
    default_score = "logits"

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        score: str | ScoreFunction | None = None,
        truncation: bool = False,
    ):
        check_model_and_tokenizer(model, tokenizer)
        self.model = model
        self.tokenizer = tokenizer
        self.score_function = resolve_score(score if score is not None else self.default_score)
        self.truncation = truncation
        self.max_length = max_model_length(model, tokenizer)
        self.layer: Layer | None = None
        # classification: leave a predicted-class target to the method's first model call on the input
        self.defer_prediction = False

    @property
    def device(self) -> torch.device:
        """Where the model's input embeddings live."""
        return self.model.get_input_embeddings().weight.device

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of `input_ids` (a lookup: the embedding matrix is never copied)."""
        with torch.no_grad():
            return self.model.get_input_embeddings()(input_ids.to(self.device)).detach()

    def prepare(
        self, inputs: Inputs, targets: Targets, granularity: Granularity, **kwargs: Any
    ) -> list[Sample]:
        """Tokenizes inputs and resolves targets into samples."""
        raise NotImplementedError

    def encode_within_limit(self, encode: Callable[..., Encoding]) -> Encoding:
        """`encode()` once; over the model's length limit, raises, or with `truncation=True` encodes again with
        the tokenizer's own truncation (`encode(max_length=...)`)."""
        encoding = encode()
        if self.max_length is None or len(encoding.input_ids) <= self.max_length:
            return encoding
        if not self.truncation:
            check_length(len(encoding.input_ids), self.max_length)
        return encode(max_length=self.max_length)

    def target_logits(self, sample: Sample, model_kwargs: dict) -> torch.Tensor:
        """Model outputs for the scored targets, shape `(rows, n_targets, vocab_or_labels)`."""
        raise NotImplementedError

    def scores(
        self,
        sample: Sample,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Explained scores of rows of `sample`, shape `(rows, n_targets)`.

        Give either `input_ids` `(rows, seq)`, `inputs_embeds` `(rows, seq, hidden)`, or `activations`
        `(rows, seq, hidden)`: the output of `layer`, replacing the one the sample's tokens give (the layers
        before it run on the sample as usual). Gradients flow when the caller enables them; callers that only
        read scores run this under `torch.inference_mode()`.
        """
        if activations is None:
            values = self.target_logits(sample, self.model_kwargs(sample, input_ids, inputs_embeds))
            return self.score_values(values, sample)
        if self.layer is None:
            raise ValueError("activations: this task has no layer to replace the output of.")
        input_ids = sample.input_ids[None].expand(activations.shape[0], -1)
        with self.layer.replaced(activations):
            values = self.target_logits(sample, self.model_kwargs(sample, input_ids))
        return self.score_values(values, sample)

    def explained_scores(self, sample: Sample, rows: torch.Tensor) -> torch.Tensor:
        """Scores of rows `(rows, seq, hidden)` of the space explanations attribute to: input embeddings, or
        the hidden states of `layer` when it is set."""
        if self.layer is None:
            return self.scores(sample, inputs_embeds=rows)
        return self.scores(sample, activations=rows)

    def layer_activations(self, sample: Sample, input_ids: torch.Tensor) -> torch.Tensor:
        """The hidden states `layer` outputs for rows of token ids `(rows, seq)` of `sample`:
        `(rows, seq, hidden)`, detached."""
        if self.layer is None:
            raise ValueError("split_point: this task has no layer to read activations at.")
        with torch.no_grad():
            hidden = self.layer.outputs(
                lambda: self.target_logits(sample, self.model_kwargs(sample, input_ids=input_ids))
            )
        if hidden.dim() != 3 or hidden.shape[:2] != input_ids.shape:
            raise ValueError(
                f"split_point: {self.layer.name} outputs a tensor of shape {tuple(hidden.shape)}, not hidden "
                f"states of shape (rows, {input_ids.shape[1]}, hidden): pick a layer with one vector per token."
            )
        return hidden

    def score_values(self, values: torch.Tensor, sample: Sample, steps: slice = slice(None)) -> torch.Tensor:
        """Scores `(rows, n)` from logits `(rows, n, vocab_or_labels)` of the targets `steps` selects."""
        values = values.float()
        scores = self.score_function(values, sample.target_ids[steps].to(values.device))
        if sample.contrast_ids is not None:
            scores = scores - self.score_function(values, sample.contrast_ids[steps].to(values.device))
        return scores

    @property
    def reuses_prefix(self) -> bool:
        """Whether `input_state` keeps something that rows sharing a prefix with the input reuse."""
        return False

    def input_state(self, sample: Sample) -> tuple[Any, torch.Tensor]:
        """Scores of the unperturbed input `(n_targets,)`, and what later calls may reuse of its computation
        (nothing here; generation keeps its KV cache). Run under `torch.inference_mode()`."""
        if sample.scores is not None:  # already computed when the target was the predicted class
            return None, sample.scores
        return None, self.scores(sample, input_ids=sample.input_ids[None])[0]

    def scores_after(
        self, sample: Sample, input_ids: torch.Tensor, start: int, state: Any, input_scores: torch.Tensor
    ) -> torch.Tensor:
        """Scores of rows equal to the input before position `start`; tasks that can, reuse `state` for that
        unchanged prefix. Run under `torch.inference_mode()`."""
        return self.scores(sample, input_ids=input_ids)

    def model_kwargs(
        self,
        sample: Sample,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Keyword arguments of one model call on rows of `sample` (no padding: rows share one length)."""
        rows, length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        model_kwargs = {"attention_mask": torch.ones(rows, length, dtype=torch.long, device=self.device)}
        if input_ids is not None:
            model_kwargs["input_ids"] = input_ids.to(self.device)
        else:
            model_kwargs["inputs_embeds"] = inputs_embeds
        for key, value in sample.model_inputs.items():
            model_kwargs[key] = value.to(self.device).expand(rows, -1)
        return model_kwargs


def _class_names(mapping: dict) -> set[str]:
    names = set()
    for value in mapping.values():
        names.update(value if isinstance(value, (list, tuple)) else [value])
    return names


def is_classifier(model) -> bool:
    """True for `...ForSequenceClassification` models."""
    name = type(model).__name__
    return name.endswith("ForSequenceClassification") or name in _class_names(
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
    )


def is_causal_lm(model) -> bool:
    """True for `...ForCausalLM` models (GPT-2's `GPT2LMHeadModel` included)."""
    name = type(model).__name__
    return name.endswith("ForCausalLM") or name in _class_names(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def make_task(model, tokenizer, score=None, truncation: bool = False) -> Task:
    """Chooses the task wrapper from the model's kind.

    Raises:
        TypeError: the model is neither a sequence classifier nor a causal language model.
    """
    from interpreto.model.classification import ClassificationTask
    from interpreto.model.generation import GenerationTask
    from interpreto.model.remote import RemoteGenerationTask, RemoteScorer

    if isinstance(model, RemoteScorer):  # a causal LM behind a completions endpoint
        return RemoteGenerationTask(model, tokenizer, score=score, truncation=truncation)
    check_model_and_tokenizer(model, tokenizer)
    if is_classifier(model):
        return ClassificationTask(model, tokenizer, score=score, truncation=truncation)
    if is_causal_lm(model):
        return GenerationTask(model, tokenizer, score=score, truncation=truncation)
    from interpreto.model.token_classification import token_level_task  # QA, token classification

    if (token_task := token_level_task(model)) is not None:
        return token_task(model, tokenizer, score=score, truncation=truncation)
    raise TypeError(
        f"model is a {type(model).__name__}: explainers support sequence classifiers "
        f"(...ForSequenceClassification), causal language models (...ForCausalLM), question answering "
        f"(...ForQuestionAnswering) and token classification (...ForTokenClassification) models."
    )
