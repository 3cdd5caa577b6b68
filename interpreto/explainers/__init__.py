"""Task explainers in two lines, with transformers-interpret's call shapes, over any attribution method."""

from interpreto.explainers.image_classification import ImageClassificationExplainer
from interpreto.explainers.multilabel import MultiLabelClassificationExplainer
from interpreto.explainers.pairwise import PairwiseSequenceClassificationExplainer
from interpreto.explainers.question_answering import QuestionAnsweringExplainer
from interpreto.explainers.sequence import SequenceClassificationExplainer
from interpreto.explainers.token_classification import TokenClassificationExplainer
from interpreto.explainers.zero_shot import ZeroShotClassificationExplainer

__all__ = [
    "ImageClassificationExplainer",
    "MultiLabelClassificationExplainer",
    "PairwiseSequenceClassificationExplainer",
    "QuestionAnsweringExplainer",
    "SequenceClassificationExplainer",
    "TokenClassificationExplainer",
    "ZeroShotClassificationExplainer",
]
