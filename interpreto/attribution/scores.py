"""Score functions live in `interpreto.model.scores` (shared by every task and subpackage); this path is kept for
existing imports."""

from interpreto.model.scores import (
    SCORES,
    ScoreFunction,
    log_probabilities,
    logits,
    probabilities,
    resolve_score,
    sigmoid_probabilities,
)

__all__ = [
    "SCORES",
    "ScoreFunction",
    "log_probabilities",
    "logits",
    "probabilities",
    "resolve_score",
    "sigmoid_probabilities",
]
