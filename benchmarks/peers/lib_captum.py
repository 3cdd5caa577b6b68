"""Adapter for captum: its attribution classes wired to the model by hand, as a captum user would.

Classification: gradient methods on the word embeddings (`inputs_embeds`), IG as `LayerIntegratedGradients` on
the embedding layer with a pad-token baseline, perturbation methods on `input_ids` with a word feature mask
(special tokens are groups of their own: captum cannot leave positions out of a mask).
Generation: captum's `LLMAttribution` / `LLMGradientAttribution` wrappers with a `TextTokenInput`.
Settings: `n_steps`, `n_samples`, `nt_samples`, and the batch knobs `internal_batch_size`,
`perturbations_per_eval`, `nt_samples_batch_size` (captum's defaults when absent).
"""

from __future__ import annotations

from common import NotAvailable, package_versions, word_ids


def versions() -> dict[str, str]:
    return package_versions("captum", "scikit-learn")


def build(model, tokenizer, case: dict):
    """`explain()` for one captum method on the case's task."""
    if case["task"] == "classification":
        return build_classification(model, tokenizer, case)
    return build_generation(model, tokenizer, case)


def build_classification(model, tokenizer, case: dict):
    import torch
    from captum import attr

    ids, groups = word_ids(tokenizer, case["text"])
    mask = torch.ones_like(ids)
    target, settings = case["target"], dict(case["settings"])
    embeddings = model.get_input_embeddings()(ids).detach()
    replacement = tokenizer.pad_token_id

    def from_embeddings(rows):
        return model(inputs_embeds=rows, attention_mask=mask.expand(rows.shape[0], -1)).logits

    def from_ids(rows):
        return model(input_ids=rows, attention_mask=torch.ones_like(rows)).logits

    method = case["method"]
    if method in ("Saliency", "InputXGradient"):
        explainer = getattr(attr, method)(from_embeddings)
        return lambda: explainer.attribute(embeddings, target=target).sum(-1)
    if method == "SmoothGrad":
        tunnel = attr.NoiseTunnel(attr.Saliency(from_embeddings))
        stdev = 0.1 * float(embeddings.pow(2).mean().sqrt())
        return lambda: tunnel.attribute(
            embeddings, target=target, nt_type="smoothgrad", stdevs=stdev, **settings
        )
    if method == "IntegratedGradients":
        explainer = attr.LayerIntegratedGradients(from_ids, model.get_input_embeddings())
        special = torch.tensor(
            tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
        )
        baseline = torch.where(special.bool(), ids, replacement)
        return lambda: explainer.attribute(ids, baselines=baseline, target=target, **settings).sum(-1)
    perturbation = {"Occlusion": attr.FeatureAblation, "Lime": attr.Lime, "KernelShap": attr.KernelShap}
    if method not in perturbation:
        raise NotAvailable(f"no captum class for {method}")
    explainer = perturbation[method](from_ids)
    return lambda: explainer.attribute(
        ids, baselines=replacement, target=target, feature_mask=groups, **settings
    )


def build_generation(model, tokenizer, case: dict):
    from captum import attr

    settings, method = dict(case["settings"]), case["method"]
    text, target = case["text"], case["target"]
    if method == "IntegratedGradients":
        layer = attr.LayerIntegratedGradients(model, model.get_input_embeddings())
        explainer = attr.LLMGradientAttribution(layer, tokenizer)
    elif method in ("Occlusion", "Lime"):
        base = attr.FeatureAblation(model) if method == "Occlusion" else attr.Lime(model)
        explainer = attr.LLMAttribution(base, tokenizer)
    else:
        raise NotAvailable("LLMGradientAttribution only wraps layer methods (no plain Saliency)")
    skip = (
        [0]
        if tokenizer.bos_token_id is not None and tokenizer(text)["input_ids"][0] == tokenizer.bos_token_id
        else None
    )
    return lambda: explainer.attribute(
        attr.TextTokenInput(text, tokenizer, skip_tokens=skip), target=target, **settings
    )
