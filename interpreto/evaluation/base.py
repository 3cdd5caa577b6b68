"""The shared plumbing of the faithfulness metrics: explanations back to samples, element rankings, and the
scores of inputs with some elements removed.

A metric takes the `AttributionOutput`s an explainer returned. Each carries its input (`source`), its targets and
its granularity, so the metric prepares the same sample again (the same tokens and elements), ranks the elements
that can influence each target, builds the rows it needs (which elements each row removes), and runs them in
batches under `torch.inference_mode()` with the pipeline's masking (`masked_scores`). A subclass only says which
rows it needs (`masks`) and what their scores mean (`reduce`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from interpreto.attribution.output import AttributionOutput
from interpreto.evaluation.results import MetricResult
from interpreto.model.classification import TextPair
from interpreto.model.masking import masked_scores
from interpreto.model.running import check_integer, explaining, row_batches
from interpreto.model.sample import Model, Sample, Tokenizer
from interpreto.model.scores import SCORES, ScoreFunction
from interpreto.model.task import Task, make_task
from interpreto.model.tokens import replacement_token_id

ORDERS = ("attribution", "reverse", "random")


class AttributionMetric:
    """Base of the metrics that remove elements in the order an attribution ranks them.

    Args:
        model: the explained classifier or causal LM (never modified).
        tokenizer: its fast tokenizer.
        score: the score read on each row: `"probabilities"` (default), `"logits"`, `"log_probabilities"`, a
            function (see `interpreto.model.scores`), or None for the score the explanations explain. For
            generation, each continuation token is scored.
        batch_size: rows per model call.
        device: where to run; None runs where the model is.
        progress: show a progress bar over explanations.
        replace_token_id: the token that stands for a removed element; None uses the tokenizer's mask, else
            a space for causal LMs, else unknown or pad, never an end token (as the attribution methods do).
        max_batch_tokens: at most this many tokens (rows x sequence length) per model call.
        truncation: cut inputs longer than the model allows, as the explainer did.
    """

    name = "metric"
    higher_is_better = True
    x_label = ""

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        score: str | ScoreFunction | None = "probabilities",
        batch_size: int = 64,
        device: torch.device | str | None = None,
        progress: bool = True,
        replace_token_id: int | None = None,
        max_batch_tokens: int | None = None,
        truncation: bool = False,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.score = score
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.replace_token_id = replace_token_id
        self.max_batch_tokens = max_batch_tokens
        self.truncation = truncation

    def evaluate(
        self, explanations: Sequence[AttributionOutput], order: str = "attribution", seed: int = 0
    ) -> MetricResult:
        """Evaluates explanations.

        Args:
            explanations: the `AttributionOutput`s an explainer returned (or loaded from a file).
            order: `"attribution"` ranks elements by decreasing attribution (the explanation under test);
                `"random"` by a random permutation (the reference any faithful method must beat); `"reverse"` by
                increasing attribution.
            seed: seeds the random order and the metric's own random draws.

        Returns:
            A `MetricResult` with one value per explanation.
        """
        explanations = check_explanations(explanations)
        self._check_parameters(order)
        generator = torch.Generator().manual_seed(int(seed))
        score = self.score if self.score is not None else explained_score(explanations)
        task = self.make_task(score)
        values, curves = [], []
        with explaining(self.model, self.device):
            for index, output in enumerate(self._progress(explanations)):
                value, curve = self.evaluate_one(
                    task, output, prepare_again(task, output, index), order, generator
                )
                values.append(value)
                curves.append(curve)
        return MetricResult(
            metric=self.name,
            per_input=torch.tensor(values, dtype=torch.float64),
            higher_is_better=self.higher_is_better,
            order=order,
            score=score if isinstance(score, str) else getattr(score, "__name__", "custom"),
            steps=self.steps(),
            per_input_curves=None if curves[0] is None else torch.stack(curves),
            x_label=self.x_label,
        )

    def evaluate_one(
        self, task: Task, output: AttributionOutput, sample: Sample, order: str, generator: torch.Generator
    ) -> tuple[float, torch.Tensor | None]:
        """The value (and curve) of one explanation: the mean over its targets."""
        rankings = element_rankings(output, sample, order, generator)
        masks = [self.masks(ranking, sample.n_elements, generator) for ranking in rankings]
        input_scores, scores = masked_scores(
            task, sample, torch.cat(masks), self._replacement(task), self._batches
        )
        values, curves, start = [], [], 0
        for target, (ranking, target_masks) in enumerate(zip(rankings, masks, strict=True)):
            rows = scores[start : start + len(target_masks), target]
            start += len(target_masks)
            value, curve = self.reduce(
                input_scores[target], rows, ranking, target_masks, output.attributions[target]
            )
            values.append(value)
            curves.append(curve)
        value = float(torch.tensor(values, dtype=torch.float64).nanmean())
        return value, None if curves[0] is None else torch.stack(curves).double().nanmean(0)

    def masks(self, ranking: torch.Tensor, n_elements: int, generator: torch.Generator) -> torch.Tensor:
        """`(n_rows, n_elements)` bool: which elements each row removes, for one target whose elements rank as
        `ranking` (element indices, most important first; only elements that can influence the target)."""
        raise NotImplementedError

    def reduce(
        self,
        input_score: torch.Tensor,
        row_scores: torch.Tensor,
        ranking: torch.Tensor,
        masks: torch.Tensor,
        attributions: torch.Tensor,
    ) -> tuple[float, torch.Tensor | None]:
        """The value (and curve, or None) of one target from its input score and its rows' scores."""
        raise NotImplementedError

    def steps(self) -> torch.Tensor | None:
        """The x values of the metric's curve (None for metrics without one)."""
        return None

    def make_task(self, score: str | ScoreFunction) -> Task:
        """The task wrapper reading `score`; classification and generation only."""
        task = make_task(self.model, self.tokenizer, score=score, truncation=self.truncation)
        if task.name not in ("classification", "generation"):
            raise TypeError(
                f"{self.name} evaluates sequence classifiers and causal language models, not a "
                f"{type(self.model).__name__}."
            )
        return task

    def _check_parameters(self, order: str) -> None:
        if order not in ORDERS:
            raise ValueError(f"order={order!r} is unknown: use one of {ORDERS}.")
        check_integer("batch_size", self.batch_size)
        check_integer("max_batch_tokens", self.max_batch_tokens, allow_none=True)

    def _replacement(self, task: Task) -> int:
        return replacement_token_id(task.tokenizer, self.replace_token_id)

    def _batches(self, n_rows: int, length: int):
        return row_batches(n_rows, length, self.batch_size, self.max_batch_tokens)

    def _progress(self, explanations: list[AttributionOutput]):
        show = self.progress and len(explanations) > 1
        return tqdm(explanations, desc=type(self).__name__, disable=not show)


def check_explanations(explanations) -> list[AttributionOutput]:
    """A non-empty list of `AttributionOutput`s, or a `TypeError`/`ValueError` saying what was given."""
    if isinstance(explanations, AttributionOutput):
        explanations = [explanations]
    explanations = list(explanations)
    if not explanations:
        raise ValueError("explanations is empty: pass the list of AttributionOutputs an explainer returned.")
    for index, output in enumerate(explanations):
        if not isinstance(output, AttributionOutput):
            raise TypeError(
                f"explanations[{index}] is a {type(output).__name__}: pass the AttributionOutputs an explainer "
                f"returned (e.g. Occlusion(model, tokenizer)(texts))."
            )
    return explanations


def explained_score(explanations: list[AttributionOutput]) -> str:
    """The score name all explanations explain, or a `ValueError` asking for `score=`."""
    names = {output.score for output in explanations}
    if len(names) != 1 or next(iter(names)) not in SCORES:
        raise ValueError(
            f"score=None reads the explanations' own score, but they explain {sorted(names)}: pass score= "
            f"(one of {sorted(SCORES)} or a function)."
        )
    return names.pop()


def prepare_again(task: Task, output: AttributionOutput, index: int) -> Sample:
    """The sample `output` explained: its input, targets and granularity prepared again by `task`."""
    from interpreto.model.granularity import Granularity

    source = output.source if output.source is not None else output.text
    if isinstance(source, dict):
        source = TextPair(**source)
    kwargs = {"contrast": list(output.contrasts)} if output.contrasts else {}
    sample = task.prepare(source, list(output.targets), Granularity(output.granularity), **kwargs)[0]
    if list(sample.elements.labels) != list(output.elements):
        raise ValueError(
            f"explanations[{index}]: preparing its input again gives other elements than the explanation holds "
            f"({len(sample.elements.labels)} vs {len(output.elements)}): evaluate with the model and tokenizer "
            f"that made it."
        )
    return sample


def element_rankings(
    output: AttributionOutput, sample: Sample, order: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """For each target, the indices of the elements that can influence it, most important first under `order`
    (ties keep element order)."""
    rankings = []
    for target in range(sample.n_targets):
        visible = torch.nonzero(sample.visible[target]).flatten()
        if order == "random":
            rankings.append(visible[torch.randperm(len(visible), generator=generator)])
            continue
        values = torch.nan_to_num(output.attributions[target, visible].double(), nan=0.0)
        ranks = torch.sort(values, descending=order == "attribution", stable=True).indices
        rankings.append(visible[ranks])
    return rankings


def removal_masks(
    ranking: torch.Tensor, counts: Sequence[int], n_elements: int, keep: bool = False
) -> torch.Tensor:
    """`(len(counts), n_elements)` bool: row i removes the first `counts[i]` ranked elements, or with `keep=True`
    keeps them and removes the other ranked elements."""
    masks = torch.zeros(len(counts), n_elements, dtype=torch.bool)
    for row, count in enumerate(counts):
        chosen = ranking[count:] if keep else ranking[:count]
        masks[row, chosen] = True
    return masks
