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
from interpreto.visualization.html import save_html

__version__ = "0.1.0"

__all__ = [
    "AttributionOutput",
    "GradientShap",
    "Granularity",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "Occlusion",
    "Saliency",
    "SmoothGrad",
    "Sobol",
    "SquareGrad",
    "VarGrad",
    "load_explanations",
    "save_explanations",
    "save_html",
]
