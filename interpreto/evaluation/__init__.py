"""Faithfulness metrics for attributions, and method comparison tables.

Every metric takes the `AttributionOutput`s an explainer returned (classification or generation, any
granularity) and returns a `MetricResult` (`.value`, `.per_input`, `.curve`, `.higher_is_better`,
`.to_dict()`, `.plot()`):

- `Deletion` (lower is better) and `Insertion` (higher is better) curves and their normalized AUC;
- `Comprehensiveness` (higher is better) and `Sufficiency` (lower is better) from ERASER, and `AOPC`;
- `Infidelity` (lower is better) and, for gradient methods, `Sensitivity` (lower is better).

`compare(methods, model, tokenizer, texts, metrics)` runs several methods over a dataset and returns a
`ComparisonTable`.
"""

from interpreto.evaluation.base import AttributionMetric
from interpreto.evaluation.compare import ComparisonTable, compare
from interpreto.evaluation.concepts import (
    L0,
    MSE,
    ConceptMetricResult,
    ConSim,
    ConSimPrompts,
    DeadConcepts,
    ExplainedVariance,
    FrechetDistance,
    LossRecovered,
    Stability,
)
from interpreto.evaluation.deletion_insertion import Deletion, Insertion
from interpreto.evaluation.eraser import AOPC, Comprehensiveness, Sufficiency
from interpreto.evaluation.infidelity import Infidelity
from interpreto.evaluation.results import MetricResult
from interpreto.evaluation.sensitivity import Sensitivity

__all__ = [
    "AOPC",
    "AttributionMetric",
    "ComparisonTable",
    "Comprehensiveness",
    "Deletion",
    "Infidelity",
    "Insertion",
    "MetricResult",
    "Sensitivity",
    "Sufficiency",
    "compare",
    "ConceptMetricResult",
    "ConSim",
    "ConSimPrompts",
    "DeadConcepts",
    "ExplainedVariance",
    "FrechetDistance",
    "L0",
    "LossRecovered",
    "MSE",
    "Stability",
]
