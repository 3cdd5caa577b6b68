"""Max-sensitivity (Yeh et al., 2019): how much a gradient method's attributions move under small input noise."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interpreto.attribution.gradient import GradientExplainer
from interpreto.attribution.output import AttributionOutput
from interpreto.evaluation.base import AttributionMetric, check_explanations, prepare_again
from interpreto.evaluation.results import MetricResult
from interpreto.model.running import check_integer, explaining
from interpreto.model.sample import Model, Sample, Tokenizer
from interpreto.model.task import Task, make_task


class Sensitivity(AttributionMetric):
    """Max-sensitivity of a gradient method under uniform noise on the input embeddings. **Lower is better.**

    `SENS = max_j ||a(x + d_j) - a(x)|| / ||a(x)||` over `n_samples` draws `d_j`, uniform in
    `[-r, r]` per coordinate of each text token's embedding (special tokens unchanged), with `r = radius` times
    the root-mean-square value of the input's embeddings (the same radius is the same relative noise on any
    model). Attributions `a` are recomputed by `explainer` (the reference too, so the explainer's settings decide),
    at the explanations' inputs, targets and granularity; elements that cannot influence a target count as 0.
    `normalize=False` drops the division by `||a(x)||` (Yeh et al.'s definition).

    Args:
        model: the explained model (never modified).
        tokenizer: its fast tokenizer.
        radius: the noise half-width relative to the embeddings' RMS.
        n_samples: noise draws per explanation.
        normalize: divide by the norm of the unperturbed attributions.
        progress: show a progress bar over explanations.

    Examples:
        >>> from interpreto import IntegratedGradients
        >>> from interpreto.evaluation import Sensitivity
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> explainer = IntegratedGradients(model, tokenizer, n_perturbations=8, progress=False)
        >>> explanations = explainer(["a fine film"])
        >>> result = Sensitivity(model, tokenizer, n_samples=3, progress=False).evaluate(explanations, explainer)
        >>> result.value > 0
        True
    """

    name = "Sensitivity"
    higher_is_better = False

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        radius: float = 0.02,
        n_samples: int = 10,
        normalize: bool = True,
        progress: bool = True,
    ):
        super().__init__(model, tokenizer, progress=progress)
        self.radius = radius
        self.n_samples = n_samples
        self.normalize = normalize

    def evaluate(  # type: ignore[override]
        self, explanations: Sequence[AttributionOutput], explainer: GradientExplainer, seed: int = 0
    ) -> MetricResult:
        """Max-sensitivity of `explainer` at each explanation's input.

        Args:
            explanations: `AttributionOutput`s (their inputs, targets and granularity are used).
            explainer: the gradient method to re-run (e.g. `IntegratedGradients(model, tokenizer)`), on this
                metric's model.
            seed: seeds the noise.
        """
        explanations = check_explanations(explanations)
        self._check_explainer(explainer)
        generator = torch.Generator().manual_seed(int(seed))
        task = make_task(self.model, self.tokenizer, score=explainer.score, truncation=explainer.truncation)
        values = []
        with explaining(self.model, explainer.device):
            for index, output in enumerate(self._progress(explanations)):
                sample = prepare_again(task, output, index)
                values.append(self._max_sensitivity(explainer, task, sample, generator))
        return MetricResult(
            metric=self.name,
            per_input=torch.tensor(values, dtype=torch.float64),
            higher_is_better=False,
            order="attribution",
            score=explainer._score_name(task),
        )

    def _check_explainer(self, explainer) -> None:
        if not isinstance(explainer, GradientExplainer):
            raise TypeError(
                f"explainer is a {type(explainer).__name__}: Sensitivity re-runs a gradient method on noisy "
                f"embeddings (Saliency, InputXGradient, IntegratedGradients, GradientShap, SmoothGrad...)."
            )
        if explainer.split_point is not None:
            raise ValueError(
                "explainer has a split_point: Sensitivity adds noise to the input embeddings; evaluate an explainer "
                "without split_point."
            )
        if explainer.model is not self.model:
            raise ValueError(
                "explainer explains another model than the metric's: build both on the same model."
            )
        explainer._check_parameters()
        check_integer("n_samples", self.n_samples)
        if not self.radius > 0:
            raise ValueError(f"radius must be positive, got {self.radius!r}.")

    def _max_sensitivity(
        self, explainer: GradientExplainer, task: Task, sample: Sample, generator: torch.Generator
    ) -> float:
        inputs = task.embed(sample.input_ids)
        text = sample.maskable.to(inputs.device)
        scale = self.radius * float(inputs[text].float().square().mean().sqrt())
        reference = self._attributions(explainer, task, sample, inputs)
        worst = 0.0
        for _ in range(self.n_samples):
            noise = (torch.rand(inputs.shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale
            noisy = inputs + noise.to(inputs) * text[:, None]
            change = (self._attributions(explainer, task, sample, noisy) - reference).norm()
            worst = max(worst, float(change))
        if not self.normalize:
            return worst
        norm = float(reference.norm())
        return worst / norm if norm > 0 else float("nan")

    @staticmethod
    def _attributions(explainer: GradientExplainer, task: Task, sample: Sample, inputs: torch.Tensor):
        attributions = explainer.attribute(task, sample, inputs).attributions.double().cpu()
        return attributions.masked_fill(~sample.visible, 0.0)
