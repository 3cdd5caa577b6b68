"""Gradient methods: batched forward+backward passes on input embeddings.

A gradient method says at which points to differentiate and what each gradient is multiplied by (`rows`:
the input itself times itself for InputXGradient, a path from a baseline times (x - b) for IntegratedGradients,
noisy copies...), and how the rows' element scores combine (`reduce`: a weighted sum by default; a mean of
squares or a variance for the noise-tunnel methods). A row's token scores are `factor . gradient`
(`token_scores`; Saliency takes the gradient's norm instead). The pipeline runs rows in chunks: one forward per
chunk, then the gradients of every target from that forward's graph, taken with respect to the embeddings only
(the model's parameters get no `.grad`). With several targets (generation), a small chunk takes them all in one
batched backward pass (`target_gradients`); a large one takes one backward pass per target.

With a `split_point`, the same runs one layer up: the input is the hidden states that layer outputs for the
sample, the baseline those it outputs for the baseline input, and a row is scored by the model with that layer's
output replaced by the row (`Task.explained_scores`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch

from interpreto.attribution.base import AttributionExplainer, MethodResult
from interpreto.model.memory import BATCHED_TARGET_TOKENS
from interpreto.model.running import element_matrix
from interpreto.model.sample import Sample
from interpreto.model.task import Task


def target_gradients(scores: torch.Tensor, rows: torch.Tensor, batched: bool) -> Iterator[torch.Tensor]:
    """The gradient of each target's summed scores (`scores` `(n_rows, n_targets)`) with respect to `rows`, in
    target order. `batched`: one vectorized backward pass for all targets; otherwise (or if an operation of the
    model has no batching rule) one backward pass per target, reusing the graph."""
    n_targets = scores.shape[1]
    if batched and n_targets > 1:
        cotangents = torch.eye(n_targets, dtype=scores.dtype, device=scores.device)[:, None, :]
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*performance drop.*", category=UserWarning)
                (gradients,) = torch.autograd.grad(
                    scores,
                    rows,
                    grad_outputs=cotangents.expand(n_targets, *scores.shape),
                    is_grads_batched=True,
                    retain_graph=True,  # kept for the per-target fallback below
                )
        except RuntimeError:
            pass
        else:
            yield from gradients
            return
    for target in range(n_targets):
        (gradient,) = torch.autograd.grad(scores[:, target].sum(), rows, retain_graph=target < n_targets - 1)
        yield gradient


class GradientExplainer(AttributionExplainer):
    """Base of gradient methods. Subclasses define `rows`, and may override `token_scores` and `reduce`.

    A row's token scores become element scores by summing over each element's tokens
    (`element_reduction = "sum"`, so completeness holds at every granularity) or as an L2 norm (`"l2"`, for
    gradient norms); then the rows' element scores are combined by `reduce`. `baseline_value` (None, a float
    or a `(hidden,)` tensor) sets the baseline of the methods that take one.
    """

    element_reduction = "sum"
    baseline_value: float | torch.Tensor | None = None

    def rows(
        self, sample: Sample, inputs: torch.Tensor, baseline: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Points to differentiate at `(n_rows, seq, hidden)`, their weights `(n_rows,)`, and the factors their
        gradients are multiplied by, `(n_rows, seq, hidden)` or `(1, seq, hidden)` for all rows (None for
        methods that only read gradients)."""
        raise NotImplementedError

    def token_scores(self, gradients: torch.Tensor, factors: torch.Tensor | None) -> torch.Tensor:
        """Per-row token scores `(n_rows, seq)`: `factor . gradient` over the hidden dimension."""
        return (gradients.float() * factors.float()).sum(-1)

    def reduce(self, row_scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Combines element scores of all rows `(n_rows, n_targets, n_elements)` into `(n_targets, n_elements)`."""
        return torch.einsum("r,rte->te", weights.to(row_scores.dtype), row_scores)

    def baseline(self, task: Task, sample: Sample, inputs: torch.Tensor) -> torch.Tensor:
        """At every maskable position, `baseline_value` or else the replacement token's embedding (at a layer: the
        layer's hidden states for the baseline input, where every maskable token is the replacement token);
        special tokens keep the input's values, so that the elements account for all of f(x) - f(baseline)."""
        if self.baseline_value is None and task.layer is not None:
            value = task.layer_activations(sample, self.baseline_ids(task, sample)[None])[0]
        elif self.baseline_value is None:
            value = task.embed(torch.tensor([self.replacement_id(task)]))[0]
        else:
            value = torch.as_tensor(self.baseline_value, dtype=inputs.dtype, device=inputs.device)
            if value.dim() not in (0, 1) or (value.dim() == 1 and value.numel() != inputs.shape[-1]):
                raise ValueError(
                    f"baseline must be a float or a tensor of shape ({inputs.shape[-1]},), "
                    f"got shape {tuple(value.shape)}."
                )
        maskable = sample.maskable.to(inputs.device)[:, None]
        return torch.where(maskable, value.expand_as(inputs), inputs)

    def attribute(self, task: Task, sample: Sample, inputs: torch.Tensor | None = None) -> MethodResult:
        """Attributions of one sample; `inputs` `(seq, hidden)` replaces its input embeddings (the evaluation's
        `Sensitivity` explains noisy copies this way), or its hidden states at `task.layer` when set."""
        if inputs is None and task.layer is not None:
            inputs = task.layer_activations(sample, sample.input_ids[None])[0]
        elif inputs is None:
            inputs = task.embed(sample.input_ids)
        baseline = self.baseline(task, sample, inputs)
        points, weights, factors = self.rows(sample, inputs, baseline, self.generator())
        row_scores, row_outputs = self._row_element_scores(task, sample, points, factors)
        return self.finish(task, sample, self.reduce(row_scores, weights), row_outputs, inputs, baseline)

    def finish(
        self,
        task: Task,
        sample: Sample,
        attributions: torch.Tensor,
        row_outputs: torch.Tensor,
        inputs: torch.Tensor,
        baseline: torch.Tensor,
    ) -> MethodResult:
        """The method's result from its attributions `(n_targets, n_elements)`; overridden for axiom checks."""
        return MethodResult(attributions=attributions)

    def to_elements(self, token_scores: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        """Sums (or L2-combines) token scores `(..., seq)` into element scores `(..., n_elements)`."""
        if self.element_reduction == "l2":
            return (token_scores.square() @ matrix).sqrt()
        return token_scores @ matrix

    def _row_element_scores(
        self, task: Task, sample: Sample, rows: torch.Tensor, factors: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the chunks; returns element scores `(n_rows, n_targets, n_elements)` and row scores
        `(n_rows, n_targets)`."""
        n_targets = sample.n_targets
        matrix = element_matrix(sample)
        element_scores, outputs = [], []
        length = rows.shape[1]
        for chunk in self.batches(rows.shape[0], length, backward=True, targets=n_targets):
            chunk_rows = rows[chunk].detach().requires_grad_(True)
            chunk_factors = factors if factors is None or factors.shape[0] == 1 else factors[chunk]
            batched = chunk_rows.shape[0] * length * n_targets <= BATCHED_TARGET_TOKENS
            per_target = []
            with torch.enable_grad():
                row_scores = task.explained_scores(sample, chunk_rows)
                for gradients in target_gradients(row_scores, chunk_rows, batched):
                    scores = self.token_scores(gradients, chunk_factors)
                    per_target.append(self.to_elements(scores.float().cpu(), matrix))
            element_scores.append(torch.stack(per_target, dim=1))
            outputs.append(row_scores.detach().float().cpu())
            del row_scores  # frees this chunk's graph (a batched backward retains it) before the next forward
        return torch.cat(element_scores), torch.cat(outputs)
