"""Scores of perturbed copies of one sample: elements removed by a replacement token (or, at a layer, by the
baseline input's hidden states), rows batched under `torch.inference_mode()`, and for a causal LM rows grouped by
the prefix they share with the input so that its KV cache is reused.

Shared by the perturbation attribution methods and the evaluation metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from interpreto.model.running import element_matrix
from interpreto.model.sample import Sample
from interpreto.model.task import Task

# What one model call costs beyond its rows, in token positions (rows x tokens) of the same model: groups of rows
# sharing a prefix are merged while a call costs more than the positions merging adds (see `prefix_groups`).
# Chosen from Occlusion timings on SmolLM2 (21 tokens, 2-core CPU): a 1-row call costs about 0.13 s, a position
# about 1.8 ms; 0 (one call per start) took 2.9 s, 32 to 128 took 0.84 to 1.1 s, one call for all 1.05 to 1.1 s.
# On a GPU (2048) it is a guess, not measured.
CALL_OVERHEAD_TOKENS = {"cpu": 128}


def masked_scores(
    task: Task,
    sample: Sample,
    masks: torch.Tensor,
    replacement_id: int,
    batches: Callable[[int, int], Iterable[slice]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of the input `(n_targets,)` and of each row of `masks` `(n_rows, n_targets)`, a row being the input
    with the elements its mask marks replaced by `replacement_id`. Rows that mask the same tokens run once;
    `batches(n_rows, length)` chunks the rows (see `AttributionExplainer.batches`). When the task reuses the
    input's computation for an unchanged prefix (a causal LM's KV cache), rows are grouped by where they first
    differ from the input (`prefix_groups`), and each group runs from there."""
    token_masks, repeated = unique_token_masks(sample, masks)
    n_rows, length = token_masks.shape
    first_changed = torch.where(token_masks.any(1), token_masks.float().argmax(1), length)
    groups = [torch.arange(n_rows)]
    if task.reuses_prefix:
        groups = prefix_groups(first_changed, length, CALL_OVERHEAD_TOKENS.get(task.device.type, 2048))
    reuse = task.reuses_prefix and any(int(first_changed[group].min()) > 0 for group in groups)
    with torch.inference_mode():
        if reuse:
            state, input_scores = task.input_state(sample)
        else:  # no prefix to reuse: the input, if not scored yet, is one more row of the first chunk
            state, input_scores = None, sample.scores
        if input_scores is None:
            token_masks = torch.cat([torch.zeros(1, length, dtype=torch.bool), token_masks])
            first_changed = torch.cat([torch.zeros(1, dtype=first_changed.dtype), first_changed])
            groups, repeated = [torch.arange(n_rows + 1)], repeated + 1
        outputs = torch.empty(token_masks.shape[0], sample.n_targets)
        for group in groups:
            for chunk in batches(len(group), length):
                rows = group[chunk]
                ids = sample.input_ids.masked_fill(token_masks[rows], replacement_id)
                start = int(first_changed[rows].min())
                outputs[rows] = task.scores_after(sample, ids, start, state, input_scores).float().cpu()
                if input_scores is None:  # the first chunk held the input as its row 0
                    input_scores = outputs[0]
    return input_scores.float().cpu(), outputs[repeated]


def prefix_groups(starts: torch.Tensor, length: int, call_tokens: int) -> list[torch.Tensor]:
    """Row indices in groups, each to run from its smallest `starts` (the first position where a row differs
    from the input): the grouping of rows sorted by start that minimizes the total cost, a model call costing
    `call_tokens` plus its rows x the positions it runs (`length - start`)."""
    order = torch.argsort(starts, stable=True)
    values, counts = torch.unique_consecutive(starts[order], return_counts=True)
    ends = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).double()
    positions = (length - values).clamp(min=0).double()
    best = torch.zeros(len(values) + 1, dtype=torch.float64)
    cut = [0] * (len(values) + 1)
    for j in range(1, len(values) + 1):  # best[j]: the first j distinct starts, the last group from cut[j]
        costs = best[:j] + call_tokens + (ends[j] - ends[:j]) * positions[:j]
        cut[j] = int(costs.argmin())
        best[j] = costs[cut[j]]
    groups, j = [], len(values)
    while j > 0:
        groups.append(order[int(ends[cut[j]]) : int(ends[j])])
        j = cut[j]
    return groups[::-1]


def layer_masked_scores(
    task: Task,
    sample: Sample,
    masks: torch.Tensor,
    baseline_ids: torch.Tensor,
    batches: Callable[[int, int], Iterable[slice]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """As `masked_scores`, one layer up: a row is the hidden states `task.layer` outputs for the input, with the
    positions of the elements its mask marks taken from those it outputs for `baseline_ids` `(seq,)`."""
    token_masks, repeated = unique_token_masks(sample, masks)
    outputs = []
    with torch.inference_mode():
        inputs, baseline = task.layer_activations(sample, torch.stack([sample.input_ids, baseline_ids]))
        if sample.scores is not None:
            input_scores = sample.scores
        else:
            input_scores = task.scores(sample, activations=inputs[None])[0]
        for chunk in batches(token_masks.shape[0], token_masks.shape[1]):
            removed = token_masks[chunk].to(inputs.device)[..., None]
            rows = torch.where(removed, baseline[None], inputs[None])
            outputs.append(task.scores(sample, activations=rows).float().cpu())
    return input_scores.float().cpu(), torch.cat(outputs)[repeated]


def unique_token_masks(sample: Sample, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct `(n_unique, seq)` token masks of element masks `(n_rows, n_elements)`, and the index of each
    row's among them."""
    token_masks = (masks.float() @ element_matrix(sample).T) > 0
    return torch.unique(token_masks, dim=0, return_inverse=True)
