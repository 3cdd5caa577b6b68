"""Adapter for inseq on the causal LM: `load_model(model, method)` then `attribute(prompt, prompt + continuation)`.

inseq attributes the given continuation one token at a time (one captum call per generated token).
Settings: `n_steps` (IG), `n_samples` (LIME), and the batch knobs `internal_batch_size` (IG) or
`perturbations_per_eval` (LIME), forwarded to captum. Occlusion has no batch knob here.
"""

from __future__ import annotations

from common import NotAvailable, package_versions

METHODS = {
    "Saliency": "saliency",
    "InputXGradient": "input_x_gradient",
    "IntegratedGradients": "integrated_gradients",
    "Occlusion": "occlusion",
    "Lime": "lime",
}


def versions() -> dict[str, str]:
    return package_versions("inseq", "captum")


def build(model, tokenizer, case: dict):
    """`explain()` attributing the case's continuation with one inseq method."""
    import inseq

    if case["task"] != "generation":
        raise NotAvailable("inseq explains generation (seq2seq and causal LMs), not classifier heads")
    if case["method"] not in METHODS:
        raise NotAvailable(f"no {case['method']} in inseq")
    attribution_model = inseq.load_model(model, METHODS[case["method"]], tokenizer=tokenizer)
    prompt, full = case["text"], case["text"] + case["target"]
    settings = case["settings"]
    return lambda: attribution_model.attribute(prompt, full, show_progress=False, **settings)
