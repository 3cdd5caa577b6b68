"""Interpreting concepts: per-token codes of a dataset, top-k inputs, logit lens (and, from other modules,
labels, label scores and interventions).

Every step reads `ConceptCodes` (computed once from texts with `ConceptCodes.compute(explainer, texts)`), so a
dataset is encoded once and reused.
"""

from interpreto.concepts.interpret.codes import ConceptCodes, ConceptExample, ContextToken
from interpreto.concepts.interpret.label_scoring import (
    DetectionScorer,
    FuzzingScorer,
    LabelScore,
    SimulationScorer,
)
from interpreto.concepts.interpret.labels import LLMLabels
from interpreto.concepts.interpret.logit_lens import LogitLens, logit_lens
from interpreto.concepts.interpret.topk import TopKInputs

# (each module adds its imports above this line)

__all__ = [
    "ConceptCodes",
    "ConceptExample",
    "ContextToken",
    "LogitLens",
    "TopKInputs",
    "logit_lens",
    "DetectionScorer",
    "FuzzingScorer",
    "LLMLabels",
    "LabelScore",
    "SimulationScorer",
    # (each module adds its names above this line)
]
