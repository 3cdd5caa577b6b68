"""Adapter for Interpreto 0.5 from PyPI (same import name as ours, hence `.venv-peers`).

Its `Saliency` and `SmoothGrad` multiply the gradient by the input by default
(`input_x_gradient=True`): Saliency runs with it off, InputXGradient is Saliency with it on. Settings:
`n_perturbations`, `batch_size` (4 by default in 0.5). Generation explains log-probabilities, as ours does.
"""

from __future__ import annotations

from common import NotAvailable, package_versions

CLASSES = {
    "IntegratedGradients": ("IntegratedGradients", {}),
    "Saliency": ("Saliency", {"input_x_gradient": False}),
    "InputXGradient": ("Saliency", {"input_x_gradient": True}),
    "SmoothGrad": ("SmoothGrad", {"input_x_gradient": False}),
    "Occlusion": ("Occlusion", {}),
    "Lime": ("Lime", {}),
    "KernelShap": ("KernelShap", {}),
}


def versions() -> dict[str, str]:
    return package_versions("interpreto", "nnsight", "captum")


def build(model, tokenizer, case: dict):
    """`explain()` running one Interpreto 0.5 explainer with the case's settings."""
    from interpreto.attributions.base import InferenceModes
    from interpreto.commons.granularity import Granularity

    import interpreto

    if case["method"] not in CLASSES:
        raise NotAvailable(f"no {case['method']} in Interpreto 0.5")
    name, fixed = CLASSES[case["method"]]
    mode = InferenceModes.LOGITS if case["task"] == "classification" else InferenceModes.LOG_SOFTMAX
    settings = dict(case["settings"])
    if "granularity" in settings:
        settings["granularity"] = Granularity[settings["granularity"].upper()]
    explainer = getattr(interpreto, name)(model, tokenizer, inference_mode=mode, **fixed, **settings)
    text, target = case["text"], case["target"]
    return lambda: explainer(text, target)
