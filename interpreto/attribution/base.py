"""The shared attribution pipeline: inputs -> task -> samples -> method -> `AttributionOutput`s.

A method only says how it scores one sample's elements (`attribute`); everything else (task choice, input
checks, eval mode and its restoration, devices, progress bars, NaN for elements that cannot influence a target)
lives here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.attribution.output import AttributionOutput
from interpreto.model.granularity import Granularity
from interpreto.model.layer import model_layer
from interpreto.model.memory import BATCHED_TARGET_TOKENS, rows_within_budget
from interpreto.model.running import check_integer, explaining, row_batches
from interpreto.model.sample import Inputs, Model, Sample, Targets, Tokenizer
from interpreto.model.scores import ScoreFunction
from interpreto.model.task import Task, make_task
from interpreto.model.tokens import replacement_token_id


@dataclass
class MethodResult:
    """What a method computes for one sample."""

    attributions: torch.Tensor  # (n_targets, n_elements)
    scores: torch.Tensor | None = None  # (n_targets,) on the real input, when the method computed them
    convergence_delta: torch.Tensor | None = None  # (n_targets,)


class AttributionExplainer:
    """Base of every attribution method; call an instance on texts to explain them.

    Args:
        model: a `...ForSequenceClassification` or `...ForCausalLM` model. Never modified: its mode, device,
            weights and hooks are as before after every call.
        tokenizer: the model's fast tokenizer. Never modified.
        granularity: the unit attributed (`Granularity.WORD` by default).
        batch_size: rows (perturbations or path points) per model call.
        device: where to run; None runs where the model is. A model moved for the call is moved back.
        progress: show tqdm progress bars.
        score: what is explained: `"logits"` (classification default), `"probabilities"`,
            `"log_probabilities"` (generation default), or a function (see `interpreto.model.scores`).
        truncation: cut inputs longer than the model allows instead of raising.
        replace_token_id: the token standing for a removed element (perturbations, baselines); None uses the
            tokenizer's mask token, else a single space (causal LMs), else unknown or pad; never an end-of-sequence
            or end-of-turn token (`interpreto.model.tokens.replacement_token_id`).
        max_batch_tokens: a memory cap: at most this many tokens (rows x sequence length) per model call;
            long inputs then run in smaller chunks instead of failing. None: `batch_size` rows per call.
        memory_budget: GiB that the activations kept for one backward pass may take (gradient methods): rows
            are cut into even chunks that fit, from an estimate of the activation memory per token
            (`interpreto.model.memory`). None: a quarter of the available memory on CPU, half the free memory
            on a GPU.
        split_point: layer attribution (as captum's `Layer...` methods): attribute to the hidden states a layer
            outputs instead of the input embeddings. A block index (`1`: `bert.encoder.layer.1`,
            `model.layers.1`, ...) or a dotted module path; None (default) attributes to the input. An element
            still gets the sum over its token positions; gradient methods take gradients there (the baseline is
            the layer's output for the baseline input), perturbation methods remove an element by giving its
            positions the baseline input's hidden states at that layer.
    """

    method_name = "attribution"
    # True when the method's first model call on a sample scores the input itself (row 0): the predicted class
    # is then read from that call instead of a forward of its own
    scores_input_first = False
    # False for methods that only read scores (perturbation methods): they also run on a `RemoteScorer`
    needs_gradients = True

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        granularity: Granularity | str = Granularity.WORD,
        batch_size: int = 64,
        device: torch.device | str | None = None,
        progress: bool = True,
        score: str | ScoreFunction | None = None,
        truncation: bool = False,
        replace_token_id: int | None = None,
        max_batch_tokens: int | None = None,
        split_point: int | str | None = None,
        memory_budget: float | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.granularity = granularity
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.score = score
        self.truncation = truncation
        self.replace_token_id = replace_token_id
        self.max_batch_tokens = max_batch_tokens
        self.split_point = split_point
        self.memory_budget = memory_budget

    def __call__(
        self, inputs: Inputs, targets: Targets = None, **generation_kwargs: Any
    ) -> list[AttributionOutput]:
        """Explains each input.

        Args:
            inputs: classification: a text or a list of texts. Generation: a prompt (a string or a chat as a
                list of messages) or a list of prompts.
            targets: classification: None (predicted class), a class index, a label name, a list of them, or
                one such entry per input. Generation: the continuation (a string or token ids), one per
                prompt, or None to generate it.
            **generation_kwargs: for generation with `targets=None`, passed to `model.generate`
                (`max_new_tokens`, ...).

        Returns:
            One `AttributionOutput` per input.
        """
        granularity = self._granularity()
        self._check_parameters()
        task = make_task(self.model, self.tokenizer, score=self.score, truncation=self.truncation)
        if hasattr(task, "check_method"):  # a remote model takes perturbation methods only
            task.check_method(self)
        if self.split_point is not None:
            task.layer = model_layer(self.model, self.split_point)
        task.defer_prediction = self.scores_input_first
        with explaining(self.model, self.device):
            samples = task.prepare(inputs, targets, granularity, **generation_kwargs)
            bar = tqdm(samples, desc=type(self).__name__, disable=not self.progress or len(samples) < 2)
            return [self._explain(task, sample, granularity) for sample in bar]

    def attribute(self, task: Task, sample: Sample) -> MethodResult:
        """Element attributions of one sample, shape `(n_targets, n_elements)`."""
        raise NotImplementedError

    def _check_parameters(self) -> None:
        check_integer("batch_size", self.batch_size)
        check_integer("max_batch_tokens", self.max_batch_tokens, allow_none=True)
        budget = self.memory_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0
        ):
            raise ValueError(f"memory_budget must be None or a positive number of GiB, got {budget!r}.")

    def _granularity(self) -> Granularity:
        try:
            return Granularity(self.granularity)
        except ValueError:
            valid = [g.value for g in Granularity]
            raise ValueError(f"granularity={self.granularity!r} is unknown: use one of {valid}.") from None

    def _explain(self, task: Task, sample: Sample, granularity: Granularity) -> AttributionOutput:
        result = self.attribute(task, sample)
        attributions = result.attributions.float().cpu().masked_fill(~sample.visible, float("nan"))
        scores = sample.scores if sample.scores is not None else result.scores
        if scores is None:
            scores = self.input_scores(task, sample)
        return AttributionOutput(
            text=sample.text,
            elements=list(sample.elements.labels),
            attributions=attributions,
            targets=sample.target_ids.tolist(),
            target_names=list(sample.target_names),
            scores=scores.float().cpu(),
            offsets=list(sample.elements.spans),
            method=type(self).__name__,
            granularity=granularity.value,
            task=task.name,
            score=self._score_name(task),
            convergence_delta=None
            if result.convergence_delta is None
            else result.convergence_delta.float().cpu(),
            n_prompt_elements=sample.n_prompt_elements,
            contrasts=None if sample.contrast_ids is None else sample.contrast_ids.tolist(),
            contrast_names=sample.contrast_names,
            source=sample.source,
            split_point=None if task.layer is None else task.layer.name,
        )

    def _score_name(self, task: Task) -> str:
        if self.score is None:
            return task.default_score
        return self.score if isinstance(self.score, str) else getattr(self.score, "__name__", "custom")

    def input_scores(self, task: Task, sample: Sample) -> torch.Tensor:
        """Explained scores on the real input, `(n_targets,)`."""
        with torch.inference_mode():
            return task.scores(sample, input_ids=sample.input_ids[None])[0].cpu()

    def replacement_id(self, task: Task) -> int:
        """The token id that stands for a removed element."""
        return replacement_token_id(task.tokenizer, self.replace_token_id)

    def baseline_ids(self, task: Task, sample: Sample) -> torch.Tensor:
        """The baseline input `(seq,)`: every maskable token replaced by the replacement token."""
        return sample.input_ids.masked_fill(sample.maskable, self.replacement_id(task))

    def generator(self) -> torch.Generator:
        """A CPU generator seeded with the method's `seed` (0 for methods without one): same input, same result."""
        seed = getattr(self, "seed", None)
        return torch.Generator().manual_seed(0 if seed is None else int(seed))

    def batches(
        self, n_rows: int, length: int = 1, backward: bool = False, targets: int = 1
    ) -> Iterator[slice]:
        """Even slices of at most `batch_size` rows (fewer under `max_batch_tokens`, and for rows that will be
        differentiated, under `memory_budget`), with a progress bar when there are several. On a CPU, rows
        differentiated for several `targets` come in chunks small enough for one backward pass batched over
        the targets (`interpreto.model.memory.BATCHED_TARGET_TOKENS`), when a row fits."""
        size = self.batch_size
        if backward:
            device = self.model.get_input_embeddings().weight.device
            size = min(size, rows_within_budget(self.model, length, device, self.memory_budget))
            row_tokens = length * targets
            if targets > 1 and device.type == "cpu" and row_tokens <= BATCHED_TARGET_TOKENS:
                size = min(size, BATCHED_TARGET_TOKENS // row_tokens)
        return row_batches(n_rows, length, size, self.max_batch_tokens, self.progress)
