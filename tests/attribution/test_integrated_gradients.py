"""IntegratedGradients: completeness at every granularity, equality with captum, generation layout."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerIntegratedGradients

from interpreto import Granularity, IntegratedGradients
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale

TEXTS = ["the movie was unbelievable, really great!", "an awful film. i hated it."]


@pytest.mark.parametrize("granularity", [Granularity.TOKEN, Granularity.WORD, Granularity.SENTENCE])
def test_ig_completeness_every_granularity_classifier(bert, granularity):
    model, tokenizer = bert
    model = scaled_head(model)
    explainer = IntegratedGradients(
        model, tokenizer, n_perturbations=50, granularity=granularity, progress=False
    )
    for out in explainer(TEXTS, targets=[[0, 1, 2], "LABEL_1"]):
        attributions_sum = out.attributions.sum(-1)
        expected = attributions_sum - out.convergence_delta  # f(x) - f(b)
        assert (expected.abs() > 1e-3).all()
        assert (out.convergence_delta.abs() <= 0.01 * expected.abs()).all()


def test_ig_completeness_against_independent_baseline_forward(bert):
    """f(x) - f(b) is recomputed here with plain model calls, not taken from the explainer."""
    model, tokenizer = bert
    model = scaled_head(model)
    out = IntegratedGradients(model, tokenizer, n_perturbations=50, progress=False)(TEXTS[0], targets=2)[0]
    ids = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    )
    baseline_ids = torch.where(special.bool(), ids[0], tokenizer.mask_token_id)[None]
    with torch.no_grad():
        difference = model(ids).logits[0, 2] - model(baseline_ids).logits[0, 2]
    assert_close_to_scale(out.scores[0], model(ids).logits[0, 2].detach())
    assert abs(out.attributions.sum() - difference) <= 0.01 * abs(difference)


def test_ig_equals_captum_layer_integrated_gradients(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    text = TEXTS[0]
    ours = IntegratedGradients(
        model, tokenizer, n_perturbations=32, granularity="all_tokens", progress=False
    )(text, targets=1)[0]
    encoded = tokenizer(text, return_tensors="pt")
    ids = encoded["input_ids"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    )
    baseline_ids = torch.where(special.bool(), ids[0], tokenizer.mask_token_id)[None]

    def forward(input_ids):
        return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    theirs, delta = lig.attribute(
        ids,
        baselines=baseline_ids,
        target=1,
        n_steps=32,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    assert_close_to_scale(ours.attributions[0], theirs.sum(-1)[0])
    # both deltas are sum(attributions) - (f(x) - f(b)): their round-off is a fraction of the terms summed
    assert_close_to_scale(ours.convergence_delta, delta, scale=ours.attributions.abs().sum())


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
def test_ig_completeness_generation_per_target(model_name, request):
    model, tokenizer = request.getfixturevalue(model_name)
    # the tiny random Llama varies sharply along the path: 50 Gauss-Legendre points leave |delta| ~ 0.1,
    # 200 points 1e-4 (measured); the quadrature, not the method, sets the residual
    explainer = IntegratedGradients(
        model, tokenizer, n_perturbations=200, granularity="token", progress=False
    )
    out = explainer("the cat sat on the mat", " and the dog ran")[0]
    n_targets = len(out.targets)
    assert out.attributions.shape[0] == n_targets
    expected = out.attributions.nansum(-1) - out.convergence_delta
    # plus round-off of the sums: a fraction of the terms' magnitude (log-probs near 0 give |expected| ~ 0)
    round_off = 1e-4 * out.attributions.nan_to_num().abs().sum(-1)
    assert (out.convergence_delta.abs() <= 0.01 * expected.abs() + round_off).all()
    # row j: prompt elements and continuation tokens before j are finite, the rest NaN
    prompt = out.n_prompt_elements
    for j in range(n_targets):
        row = out.attributions[j]
        assert torch.isfinite(row[: prompt + j]).all()
        assert torch.isnan(row[prompt + j :]).all()


def test_ig_constant_baseline_and_quadratures_agree(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    results = [
        IntegratedGradients(model, tokenizer, n_perturbations=n, baseline=0.0, method=method, progress=False)(
            TEXTS[1], targets=0
        )[0].attributions
        for method, n in [("gausslegendre", 50), ("riemann_trapezoid", 400), ("riemann_middle", 400)]
    ]
    for other in results[1:]:
        torch.testing.assert_close(results[0], other, atol=2e-3, rtol=2e-2)


@pytest.mark.slow
def test_ig_completeness_zoo_sentiment_classifier():
    from interpreto.zoo import sentiment_classifier

    model, tokenizer = sentiment_classifier()
    texts = ["I absolutely loved this film, the acting was wonderful!", "Worst service ever. Never again."]
    for out in IntegratedGradients(model, tokenizer, n_perturbations=50, progress=False)(texts):
        expected = out.attributions.sum(-1) - out.convergence_delta
        assert (out.convergence_delta.abs() <= 0.01 * expected.abs()).all()
    assert [o.target_names[0] for o in IntegratedGradients(model, tokenizer, progress=False)(texts)] == [
        "positive",
        "negative",
    ]
