"""Perturbation methods: batched forward passes on copies of the input with elements removed.

A perturbation method says which elements each row removes (`masks`, drawn from the explainer's seeded
generator when random) and how the scores of those rows become attributions (`solve`). The pipeline builds the rows' token ids (removed elements' tokens replaced by the
replacement token), runs them in chunks of `batch_size` under `torch.inference_mode()`, and scores the
unperturbed input in the first chunk.
"""

from __future__ import annotations

import torch

from interpreto.attribution.base import AttributionExplainer, MethodResult, element_matrix
from interpreto.model.sample import Sample
from interpreto.model.task import Task


class PerturbationExplainer(AttributionExplainer):
    """Base of perturbation methods. Subclasses define `masks` and `solve`."""

    def masks(self, sample: Sample, generator: torch.Generator) -> torch.Tensor:
        """`(n_rows, n_elements)` bool: True where a row removes the element."""
        raise NotImplementedError

    def solve(
        self, sample: Sample, masks: torch.Tensor, scores: torch.Tensor, input_scores: torch.Tensor
    ) -> torch.Tensor:
        """Attributions `(n_targets, n_elements)` from the rows' scores `(n_rows, n_targets)` and the input's
        `(n_targets,)`. `sample.visible` tells which elements can influence each target."""
        raise NotImplementedError

    def attribute(self, task: Task, sample: Sample) -> MethodResult:
        masks = self.masks(sample, self.generator())
        scores = self.perturbed_scores(task, sample, masks)
        return MethodResult(attributions=self.solve(sample, masks, scores[1:], scores[0]), scores=scores[0])

    def perturbed_scores(self, task: Task, sample: Sample, masks: torch.Tensor) -> torch.Tensor:
        """Scores `(1 + n_rows, n_targets)` of the input followed by each masked row."""
        token_masks = (masks.float() @ element_matrix(sample).T) > 0
        token_masks = torch.cat([torch.zeros(1, token_masks.shape[1], dtype=torch.bool), token_masks])
        replacement = self.replacement_id(task)
        outputs = []
        with torch.inference_mode():
            for chunk in self.batches(token_masks.shape[0], token_masks.shape[1]):
                ids = sample.input_ids.masked_fill(token_masks[chunk], replacement)
                outputs.append(task.scores(sample, input_ids=ids).float().cpu())
        return torch.cat(outputs)
