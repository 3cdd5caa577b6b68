"""Adapter for transformers-interpret: `SequenceClassificationExplainer` (IG through captum, 50 steps by default).

Settings: `n_steps` and `internal_batch_size` (None, all steps in one batch, by default), passed to the call.
"""

from __future__ import annotations

from common import NotAvailable, package_versions


def versions() -> dict[str, str]:
    return package_versions("transformers-interpret", "captum")


def build(model, tokenizer, case: dict):
    """`explain()` running the explainer on the case's text and class index."""
    from transformers_interpret import SequenceClassificationExplainer

    if case["task"] != "classification" or case["method"] != "IntegratedGradients":
        raise NotAvailable("transformers-interpret only has IG-based explainers (LIG) for these tasks")
    explainer = SequenceClassificationExplainer(model, tokenizer)
    text, target, settings = case["text"], case["target"], case["settings"]
    return lambda: explainer(text, index=target, **settings)
