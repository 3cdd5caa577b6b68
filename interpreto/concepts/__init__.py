"""Concepts: learn a dictionary on a split model's activations, encode and decode with it, save and load it.

Every explainer follows `ConceptExplainer` (`fit`, `encode`, `decode`, `dictionary`, `is_fitted`, `save`), on
activations from `ModelWithSplitPoints.get_activations`, in memory or as a shard folder.
"""

from interpreto.concepts.base import ConceptExplainer, NotFittedError
from interpreto.concepts.data import ActivationData
from interpreto.concepts.io import load_concepts
from interpreto.concepts.neurons import NeuronsAsConcepts

# (each family adds its imports above this line)

__all__ = [
    "ActivationData",
    "ConceptExplainer",
    "NeuronsAsConcepts",
    "NotFittedError",
    "load_concepts",
    # (each family adds its names above this line)
]
