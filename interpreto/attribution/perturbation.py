"""Perturbation methods: batched forward passes on copies of the input with elements removed.

A perturbation method says which elements each row removes (`masks`, drawn from the explainer's seeded
generator when random) and how the scores of those rows become attributions (`solve`). The pipeline builds
the rows' token ids (removed elements' tokens replaced by the replacement token), scores the unperturbed
input once, and runs the rows in chunks of `batch_size` under `torch.inference_mode()`. For a causal LM, a
chunk whose rows all keep the first k tokens reuses the input's KV cache for them and runs only the rest
(Occlusion of late elements costs a fraction of a full forward).

With a `split_point`, removing an element gives its token positions the hidden states that layer outputs for
the baseline input (every text token replaced), and each row runs with the layer's output replaced (no KV
prefix reuse: the layers before it see the unperturbed input).
"""

from __future__ import annotations

import torch

from interpreto.attribution.base import AttributionExplainer, MethodResult
from interpreto.model.masking import layer_masked_scores, masked_scores
from interpreto.model.sample import Sample
from interpreto.model.task import Task


class PerturbationExplainer(AttributionExplainer):
    """Base of perturbation methods. Subclasses define `masks` and `solve`."""

    needs_gradients = False

    def masks(self, sample: Sample, generator: torch.Generator) -> torch.Tensor:
        """`(n_rows, n_elements)` bool: True where a row removes the element."""
        raise NotImplementedError

    def solve(
        self, sample: Sample, masks: torch.Tensor, scores: torch.Tensor, input_scores: torch.Tensor
    ) -> torch.Tensor:
        """Attributions `(n_targets, n_elements)` from the rows' scores `(n_rows, n_targets)` and the input's
        `(n_targets,)`. `sample.visible` tells which elements can influence each target."""
        raise NotImplementedError

    def convergence_delta(
        self, sample: Sample, scores: torch.Tensor, input_scores: torch.Tensor, attributions: torch.Tensor
    ) -> torch.Tensor | None:
        """The method's axiom residual per target (None for methods without one)."""
        return None

    def attribute(self, task: Task, sample: Sample) -> MethodResult:
        masks = self.masks(sample, self.generator())
        input_scores, scores = self.perturbed_scores(task, sample, masks)
        attributions = self.solve(sample, masks, scores, input_scores)
        delta = self.convergence_delta(sample, scores, input_scores, attributions)
        return MethodResult(attributions=attributions, scores=input_scores, convergence_delta=delta)

    def perturbed_scores(
        self, task: Task, sample: Sample, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the input `(n_targets,)` and of each masked row `(n_rows, n_targets)`."""
        if task.layer is not None:
            return layer_masked_scores(task, sample, masks, self.baseline_ids(task, sample), self.batches)
        return masked_scores(task, sample, masks, self.replacement_id(task), self.batches)
