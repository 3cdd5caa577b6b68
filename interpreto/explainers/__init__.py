"""Task explainers in two lines, with transformers-interpret's call shapes, over any attribution method."""

from interpreto.explainers.multilabel import MultiLabelClassificationExplainer
from interpreto.explainers.pairwise import PairwiseSequenceClassificationExplainer
from interpreto.explainers.sequence import SequenceClassificationExplainer
from interpreto.explainers.zero_shot import ZeroShotClassificationExplainer

__all__ = [
    "MultiLabelClassificationExplainer",
    "PairwiseSequenceClassificationExplainer",
    "SequenceClassificationExplainer",
    "ZeroShotClassificationExplainer",
]
