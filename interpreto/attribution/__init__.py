"""Attribution methods: which input elements a model's score depends on."""

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.gradient import GradientExplainer
from interpreto.attribution.gradient_shap import GradientShap
from interpreto.attribution.input_x_gradient import InputXGradient
from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.kernel_shap import KernelShap
from interpreto.attribution.lime import Lime
from interpreto.attribution.occlusion import Occlusion
from interpreto.attribution.output import AttributionOutput, load_explanations, save_explanations
from interpreto.attribution.perturbation import PerturbationExplainer
from interpreto.attribution.saliency import Saliency
from interpreto.attribution.smooth_grad import SmoothGrad
from interpreto.attribution.sobol import Sobol
from interpreto.attribution.square_grad import SquareGrad
from interpreto.attribution.var_grad import VarGrad
from interpreto.model.granularity import Granularity

__all__ = [
    "AttributionExplainer",
    "AttributionOutput",
    "GradientExplainer",
    "GradientShap",
    "Granularity",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "Occlusion",
    "PerturbationExplainer",
    "Saliency",
    "SmoothGrad",
    "Sobol",
    "SquareGrad",
    "VarGrad",
    "load_explanations",
    "save_explanations",
]
