"""Adapter for this repository's `interpreto` (run from `.venv`, not from `.venv-peers`)."""

from __future__ import annotations

from common import NotAvailable, package_versions

METHODS = {
    "IntegratedGradients": "IntegratedGradients",
    "Saliency": "Saliency",
    "InputXGradient": "InputXGradient",
    "Occlusion": "Occlusion",
    "Lime": "Lime",
    "KernelShap": "KernelShap",
    "SmoothGrad": "SmoothGrad",
}


def versions() -> dict[str, str]:
    import interpreto

    return {**package_versions("captum"), "interpreto (this repo)": interpreto.__version__}


def build(model, tokenizer, case: dict):
    """`explain()` running one of our explainers with the case's settings (`n_perturbations`, `batch_size`)."""
    import interpreto

    if case["method"] not in METHODS:
        raise NotAvailable(f"no {case['method']} in this library")
    explainer_class = getattr(interpreto, METHODS[case["method"]])
    explainer = explainer_class(model, tokenizer, progress=False, **case["settings"])
    text, target = case["text"], case["target"]
    return lambda: explainer(text, target)
