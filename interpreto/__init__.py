"""interpreto: explainability for Hugging Face transformers (attribution, concepts, evaluation)."""

from interpreto.attribution import (
    AttributionOutput,
    GradientShap,
    Granularity,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    Saliency,
    SmoothGrad,
    Sobol,
    SquareGrad,
    VarGrad,
    load_explanations,
    save_explanations,
)
from interpreto.explainers import (
    ImageClassificationExplainer,
    MultiLabelClassificationExplainer,
    PairwiseSequenceClassificationExplainer,
    QuestionAnsweringExplainer,
    SequenceClassificationExplainer,
    TokenClassificationExplainer,
    ZeroShotClassificationExplainer,
)
from interpreto.model import (
    ActivationGranularity,
    Activations,
    ModelWithSplitPoints,
    RemoteScorer,
    load_activations,
)
from interpreto.visualization.figures import save_figure
from interpreto.visualization.html import save_html

__version__ = "0.1.0"

__all__ = [
    "ActivationGranularity",
    "Activations",
    "AttributionOutput",
    "GradientShap",
    "Granularity",
    "ImageClassificationExplainer",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "ModelWithSplitPoints",
    "MultiLabelClassificationExplainer",
    "Occlusion",
    "PairwiseSequenceClassificationExplainer",
    "QuestionAnsweringExplainer",
    "RemoteScorer",
    "Saliency",
    "SequenceClassificationExplainer",
    "SmoothGrad",
    "Sobol",
    "SquareGrad",
    "TokenClassificationExplainer",
    "VarGrad",
    "ZeroShotClassificationExplainer",
    "load_activations",
    "load_explanations",
    "save_explanations",
    "save_figure",
    "save_html",
]
