"""What number is explained: one registry of score functions shared by every method and task.

A score function takes the model's logits at the scored positions, shape `(rows, n_targets, vocab_or_labels)`,
and the target ids, shape `(n_targets,)`, and returns the explained scores, shape `(rows, n_targets)`.
Classification gives the same logits row for every target; generation gives the logits at the position that
predicts each continuation token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

ScoreFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _gather(values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    index = target_ids.view(1, -1, 1).expand(values.shape[0], -1, 1)
    return values.gather(-1, index).squeeze(-1)


def logits(values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """The raw logit of each target."""
    return _gather(values, target_ids)


def probabilities(values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """The softmax probability of each target."""
    return _gather(values.softmax(-1), target_ids)


def log_probabilities(values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """The log-softmax of each target (the default for generation)."""
    return _gather(values.log_softmax(-1), target_ids)


def sigmoid_probabilities(values: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """The sigmoid probability of each target, independent of the other classes (multi-label classifiers)."""
    return _gather(values.sigmoid(), target_ids)


SCORES: dict[str, ScoreFunction] = {
    "logits": logits,
    "probabilities": probabilities,
    "log_probabilities": log_probabilities,
    "sigmoid_probabilities": sigmoid_probabilities,
}


def resolve_score(score: str | ScoreFunction) -> ScoreFunction:
    """Returns the score function named `score`, or `score` itself when it is callable."""
    if callable(score):
        return score
    if score not in SCORES:
        raise ValueError(f"score={score!r} is unknown: use one of {sorted(SCORES)} or pass a function.")
    return SCORES[score]
