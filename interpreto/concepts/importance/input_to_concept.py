"""Input-to-concept attributions: which input elements make a concept fire, with any attribution method.

The explained score of a row is the concept's activation at the split point, `encode(a)[:, c]`, aggregated over
the text positions (sum by default, or max, mean, or the activation at one position). The model runs only up to
the split point (the forward pass is stopped there). Works for classifiers and causal LMs alike: the input is
the text (or prompt) alone, the targets are the concepts.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.output import AttributionOutput
from interpreto.concepts.importance.attributions import _check_concepts
from interpreto.model.granularity import Elements, Granularity
from interpreto.model.layer import model_layer
from interpreto.model.running import explaining
from interpreto.model.sample import Inputs, Sample
from interpreto.model.task import Task, is_causal_lm, make_task

AGGREGATIONS = ("sum", "max", "mean")


class _Stop(Exception):
    """Raised in the split point's hook: the layers after it are not needed."""


class ConceptActivationTask:
    """A task whose targets are concepts and whose score is their activation at the split point.

    Args:
        task: the model's task (classification or generation); only its tokenization and embeddings are used.
        explainer: a fitted concept explainer.
        concepts: the explained concepts (the targets).
        names: a name per concept.
        aggregation: `"sum"`, `"max"` or `"mean"` over text positions, or a token position (int).
    """

    layer = None
    reuses_prefix = False
    defer_prediction = False
    default_score = "concept activation"

    def __init__(self, task: Task, explainer: Any, concepts: list[int], names: dict[int, str], aggregation):
        self.task = task
        self.explainer = explainer
        self.concepts = concepts
        self.names = names
        self.aggregation = aggregation
        self.split = model_layer(task.model, explainer.resolved_split_point())
        self.model = task.model
        self.tokenizer = task.tokenizer
        self.name = task.name

    @property
    def device(self) -> torch.device:
        return self.task.device

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.task.embed(input_ids)

    def prepare(self, inputs: Inputs, granularity: Granularity) -> list[Sample]:
        """Samples of the texts (or prompts) alone, one target per concept."""
        if is_causal_lm(self.model):  # a one-token continuation is never fed: the rows are the prompt alone
            samples = self.task.prepare(inputs, _one_token(inputs, self.tokenizer), granularity)
        else:
            samples = self.task.prepare(inputs, 0, granularity)
        return [self._concept_targets(sample) for sample in samples]

    def _concept_targets(self, sample: Sample) -> Sample:
        n = sample.n_prompt_elements
        if n is not None:
            e = sample.elements
            sample.elements = Elements(e.labels[:n], e.spans[:n], e.token_groups[:n])
            sample.n_prompt_elements = None
        sample.target_ids = torch.tensor(self.concepts, dtype=torch.long)
        sample.target_names = [self.names.get(c, f"concept {c}") for c in self.concepts]
        sample.visible = torch.ones(len(self.concepts), sample.n_elements, dtype=torch.bool)
        sample.scores = sample.contrast_ids = sample.contrast_names = None
        sample.predict_target = False
        return sample

    def scores(self, sample: Sample, input_ids=None, inputs_embeds=None, activations=None) -> torch.Tensor:
        """Aggregated activations `(rows, n_concepts)` of rows of token ids or input embeddings."""
        if activations is not None:
            raise TypeError("input-to-concept attributions explain the input, not hidden states.")
        seen: list[torch.Tensor] = []

        def record(hidden: torch.Tensor) -> None:
            seen.append(hidden)
            raise _Stop

        kwargs = self.task.model_kwargs(sample, input_ids, inputs_embeds)
        with self.split.edited(record):
            try:
                self.model(**kwargs)
            except _Stop:
                pass
        if not seen:
            raise ValueError(f"split_point: the module {self.split.name} did not run in the forward pass.")
        hidden = seen[0]
        rows, seq, width = hidden.shape
        codes = self.explainer._encode(
            hidden.reshape(rows * seq, width).float().to(self.explainer.compute_device)
        )
        codes = codes.reshape(rows, seq, -1)[..., self.concepts].to(hidden.device).float()
        return self._aggregate(codes, sample.maskable.to(hidden.device))

    def _aggregate(self, codes: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if isinstance(self.aggregation, int):
            return codes[:, self.aggregation]
        if self.aggregation == "max":
            return codes.masked_fill(~text[None, :, None], -torch.inf).amax(1)
        total = (codes * text[None, :, None]).sum(1)
        return total / text.sum() if self.aggregation == "mean" else total

    def explained_scores(self, sample: Sample, rows: torch.Tensor) -> torch.Tensor:
        return self.scores(sample, inputs_embeds=rows)

    def input_state(self, sample: Sample) -> tuple[None, torch.Tensor]:
        return None, self.scores(sample, input_ids=sample.input_ids[None])[0]

    def scores_after(self, sample, input_ids, start, state, input_scores) -> torch.Tensor:
        return self.scores(sample, input_ids=input_ids)


def input_to_concept(
    explainer: Any,
    inputs: Inputs,
    concepts: int | list[int],
    method: type[AttributionExplainer] = IntegratedGradients,
    granularity: Granularity | str = Granularity.WORD,
    aggregation: str | int = "sum",
    concept_names: dict[int, str] | None = None,
    progress: bool = True,
    **method_kwargs: Any,
) -> list[AttributionOutput]:
    """Which input elements activate each concept: an attribution method explaining the concept's activation.

    Gradient methods need a differentiable encoder (SAEs, PCA/ICA/SVD, neurons); perturbation methods
    (`Occlusion`, `KernelShap`, `Lime`, `Sobol`) work with any explainer.

    Args:
        explainer: a fitted concept explainer with a `model_with_split_points`.
        inputs: texts (classifier) or prompts (causal LM).
        concepts: the concept(s) explained; each is one target row of the outputs.
        method: an attribution method class.
        granularity: the input unit attributed (`"token"`, `"word"`, `"sentence"`).
        aggregation: the explained score: the concept's activation summed (`"sum"`), maxed or averaged over the
            text positions, or at one token position (an int, negative from the end).
        concept_names: a name per concept for the outputs' targets.
        progress: show a progress bar over inputs.
        **method_kwargs: the method's parameters.

    Returns:
        One `AttributionOutput` per input: elements are the input's words (tokens, ...), targets the concepts,
        scores their aggregated activation on the input.

    Examples:
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.attribution import Occlusion
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False)
        >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["a good movie"]))
        >>> out = input_to_concept(neurons, "a good movie", concepts=[3, 5], method=Occlusion, progress=False)[0]
        >>> out.elements, out.target_names
        (['a', 'good', 'movie'], ['concept 3', 'concept 5'])
    """
    explainer._check_fitted()
    splitter = explainer.model_with_split_points
    if splitter is None:
        raise ValueError(
            "explainer: input-to-concept attributions need the split model (a ModelWithSplitPoints)."
        )
    if not (isinstance(method, type) and issubclass(method, AttributionExplainer)):
        raise TypeError(f"method must be an attribution method class (e.g. Occlusion), got {method!r}.")
    if "score" in method_kwargs:
        raise ValueError("score: input-to-concept attributions explain the concept activation; drop score=.")
    if not (
        aggregation in AGGREGATIONS or (isinstance(aggregation, int) and not isinstance(aggregation, bool))
    ):
        raise ValueError(
            f"aggregation={aggregation!r} is unknown: use one of {list(AGGREGATIONS)} or a position."
        )
    concepts = _check_concepts(concepts, explainer.nb_concepts)
    attribution = method(splitter.model, splitter.tokenizer, granularity=granularity, **method_kwargs)
    attribution.progress = False
    attribution._check_parameters()
    granularity = attribution._granularity()
    task = make_task(splitter.model, splitter.tokenizer, truncation=splitter.truncation)
    activation_task = ConceptActivationTask(task, explainer, concepts, dict(concept_names or {}), aggregation)
    with explaining(splitter.model, splitter.device):
        samples = activation_task.prepare(inputs, granularity)
        bar = tqdm(samples, desc="input to concept", disable=not progress or len(samples) < 2)
        return [attribution._explain(activation_task, sample, granularity) for sample in bar]


def _one_token(inputs: Inputs, tokenizer) -> Any:
    """A one-token continuation per prompt (never fed to the model), for prompt-only generation samples."""
    token = [tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0]
    single = isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], dict))
    return token if single else [token] * len(inputs)
