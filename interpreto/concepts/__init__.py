"""Concepts: learn a dictionary on a split model's activations, encode and decode with it, save and load it.

Every explainer follows `ConceptExplainer` (`fit`, `encode`, `decode`, `dictionary`, `is_fitted`, `save`), on
activations from `ModelWithSplitPoints.get_activations`, in memory or as a shard folder.
"""

from interpreto.concepts.base import ConceptExplainer, NotFittedError
from interpreto.concepts.data import ActivationData
from interpreto.concepts.decompositions import ICAConcepts, PCAConcepts, SVDConcepts
from interpreto.concepts.io import load_concepts
from interpreto.concepts.kmeans import KMeansConcepts
from interpreto.concepts.neurons import NeuronsAsConcepts
from interpreto.concepts.nmf import ConvexNMFConcepts, NMFConcepts, SemiNMFConcepts
from interpreto.concepts.probes import (
    CAV,
    TCAV,
    CentroidProbe,
    LinearRegressionProbe,
    LinearSVMProbe,
    LogisticRegressionProbe,
    MeansDiffProbe,
    ProbeExplainer,
    TCAVResult,
)
from interpreto.concepts.sae import (
    BatchTopKSAEConcepts,
    JumpReLUSAEConcepts,
    SAEConcepts,
    TopKSAEConcepts,
    VanillaSAEConcepts,
)

# (each family adds its imports above this line)

__all__ = [
    "ActivationData",
    "ConceptExplainer",
    "NeuronsAsConcepts",
    "NotFittedError",
    "load_concepts",
    "BatchTopKSAEConcepts",
    "JumpReLUSAEConcepts",
    "SAEConcepts",
    "TopKSAEConcepts",
    "VanillaSAEConcepts",
    "CAV",
    "TCAV",
    "CentroidProbe",
    "LinearRegressionProbe",
    "LinearSVMProbe",
    "LogisticRegressionProbe",
    "MeansDiffProbe",
    "ProbeExplainer",
    "TCAVResult",
    "ConvexNMFConcepts",
    "ICAConcepts",
    "KMeansConcepts",
    "NMFConcepts",
    "PCAConcepts",
    "SVDConcepts",
    "SemiNMFConcepts",
    # (each family adds its names above this line)
]
