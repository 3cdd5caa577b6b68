"""Attribution methods: which input elements a model's score depends on."""

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.gradient import GradientExplainer
from interpreto.attribution.granularity import Granularity
from interpreto.attribution.input_x_gradient import InputXGradient
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.occlusion import Occlusion
from interpreto.attribution.output import AttributionOutput, load_explanations, save_explanations
from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.attribution.saliency import Saliency

__all__ = [
    "AttributionExplainer",
    "AttributionOutput",
    "GradientExplainer",
    "Granularity",
    "InputXGradient",
    "IntegratedGradients",
    "Occlusion",
    "PerturbationExplainer",
    "Saliency",
    "load_explanations",
    "save_explanations",
]
