"""Gradient methods: batched forward+backward passes on input embeddings.

A gradient method says which rows of input embeddings to differentiate at (`rows`: the input itself, a path
from a baseline, noisy copies...) and how one row's gradient becomes token scores (`token_scores`). The pipeline
runs rows in chunks of `batch_size`: one forward per chunk, one `torch.autograd.grad` per target reusing that
forward's graph, gradients taken with respect to the embeddings only (the model's parameters get no `.grad`).
"""

from __future__ import annotations

import torch

from interpreto.attribution.base import AttributionExplainer, MethodResult, element_matrix
from interpreto.model.sample import Sample
from interpreto.model.task import Task


class GradientExplainer(AttributionExplainer):
    """Base of gradient methods. Subclasses define `rows` and `token_scores`.

    Token scores are combined over rows with the weights `rows` returns, then summed over each element's
    tokens (`element_reduction = "sum"`, so completeness holds at every granularity) or combined as an L2 norm
    (`"l2"`, for gradient norms).
    """

    element_reduction = "sum"

    def rows(self, inputs: torch.Tensor, baseline: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings to differentiate at, `(n_rows, seq, hidden)`, and their weights `(n_rows,)`."""
        raise NotImplementedError

    def token_scores(
        self, rows: torch.Tensor, gradients: torch.Tensor, inputs: torch.Tensor, baseline: torch.Tensor
    ) -> torch.Tensor:
        """Per-row token scores `(n_rows, seq)` from the rows and their gradients `(n_rows, seq, hidden)`."""
        raise NotImplementedError

    def baseline(self, task: Task, sample: Sample, inputs: torch.Tensor) -> torch.Tensor:
        """The replacement token's embedding at every maskable position; special tokens kept."""
        replacement = task.embed(torch.tensor([self.replacement_id(task)]))[0]
        maskable = sample.maskable.to(inputs.device)[:, None]
        return torch.where(maskable, replacement.expand_as(inputs), inputs)

    def attribute(self, task: Task, sample: Sample) -> MethodResult:
        inputs = task.embed(sample.input_ids)
        baseline = self.baseline(task, sample, inputs)
        rows, weights = self.rows(inputs, baseline)
        token_scores, row_outputs = self._weighted_token_scores(task, sample, rows, weights, inputs, baseline)
        return self.finish(task, sample, token_scores, row_outputs, inputs, baseline)

    def finish(
        self,
        task: Task,
        sample: Sample,
        token_scores: torch.Tensor,
        row_outputs: torch.Tensor,
        inputs: torch.Tensor,
        baseline: torch.Tensor,
    ) -> MethodResult:
        """Turns token scores `(n_targets, seq)` into the method's result; overridden for axiom checks."""
        return MethodResult(attributions=self.to_elements(token_scores, sample))

    def to_elements(self, token_scores: torch.Tensor, sample: Sample) -> torch.Tensor:
        """Sums (or L2-combines) token scores `(n_targets, seq)` into elements `(n_targets, n_elements)`."""
        matrix = element_matrix(sample)
        if self.element_reduction == "l2":
            return (token_scores.square() @ matrix).sqrt()
        return token_scores @ matrix

    def _weighted_token_scores(
        self,
        task: Task,
        sample: Sample,
        rows: torch.Tensor,
        weights: torch.Tensor,
        inputs: torch.Tensor,
        baseline: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the chunks; returns weighted token scores `(n_targets, seq)` and row scores `(n_rows, n_targets)`."""
        n_targets = sample.n_targets
        total = torch.zeros(n_targets, rows.shape[1], dtype=torch.float32)
        outputs = []
        for chunk in self.batches(rows.shape[0]):
            chunk_rows = rows[chunk].detach().requires_grad_(True)
            chunk_weights = weights[chunk].to(torch.float32)
            with torch.enable_grad():
                row_scores = task.scores(sample, inputs_embeds=chunk_rows)
                for target in range(n_targets):
                    (gradients,) = torch.autograd.grad(
                        row_scores[:, target].sum(), chunk_rows, retain_graph=target < n_targets - 1
                    )
                    scores = self.token_scores(chunk_rows.detach(), gradients, inputs, baseline).float()
                    total[target] += (chunk_weights.to(scores.device)[:, None] * scores).sum(0).cpu()
            outputs.append(row_scores.detach().float().cpu())
        return total, torch.cat(outputs)
