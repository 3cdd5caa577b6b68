"""Concept metrics: how well a concept dictionary rebuilds the activations, how sparse and stable it is, and how
much of the model's loss survives when its reconstruction replaces the hidden states.

| metric | value | better |
|---|---|---|
| `MSE` | `sum ||x - x^||^2 / (n d)` | lower |
| `ExplainedVariance` | `1 - sum ||x - x^||^2 / sum ||x - mean||^2` | higher |
| `FrechetDistance` | `||mu - mu^||^2 + tr(S + S^ - 2 (S S^)^{1/2})` | lower |
| `L0` | mean number of active concepts per row | lower (at equal reconstruction) |
| `DeadConcepts` | concepts never active on the evaluation set | lower |
| `Stability` | mean Hungarian-matched cosine between fits with different seeds | higher |
| `LossRecovered` | `(CE_ablated - CE_spliced) / (CE_ablated - CE_clean)` | higher |
| `ConSim` | LLM simulation accuracy with concepts minus without (Poché et al. 2025) | higher |

Each is a class whose `compute(...)` returns a `ConceptMetricResult` (`value`, `higher_is_better`, `per_row`,
`per_concept`, `details`, `to_dict()`); the activation metrics stream shard folders in float64.
"""

from interpreto.evaluation.concepts.base import ConceptMetricResult
from interpreto.evaluation.concepts.consim import ConSim, ConSimPrompts
from interpreto.evaluation.concepts.frechet import FrechetDistance
from interpreto.evaluation.concepts.loss_recovered import LossRecovered
from interpreto.evaluation.concepts.reconstruction import MSE, ExplainedVariance
from interpreto.evaluation.concepts.sparsity import L0, DeadConcepts, density_histogram
from interpreto.evaluation.concepts.stability import Stability

__all__ = [
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
    "density_histogram",
]
