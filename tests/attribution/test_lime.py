"""Lime: recovers the additive model's effects, closer samples weigh more, the regression is scikit-learn's
weighted Ridge, 1 and 2 elements, per-target regressions for generation, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.linear_model import Ridge

from interpreto.attribution.lime import Lime, lime_kernel, weighted_ridge
from interpreto.model.running import element_matrix
from interpreto.model.task import make_task
from interpreto.zoo.additive import additive_classifier
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale

EFFECTS = {"great": 2.0, "awful": -3.0, "fine": 0.5}
WORDS = "the great movie was awful but fine".split() * 3


@pytest.mark.parametrize("distance", ["cosine", "hamming"])
def test_lime_recovers_additive_effects(distance):
    model, tokenizer = additive_classifier(EFFECTS, bias=0.3)
    explainer = Lime(model, tokenizer, n_perturbations=300, distance=distance, alpha=1e-8, progress=False)
    out = explainer(" ".join(WORDS), "positive")[0]
    assert out.elements == WORDS
    expected = torch.tensor([EFFECTS.get(word, 0.0) for word in WORDS])
    assert_close_to_scale(out.attributions[0], expected)
    # the default penalty shrinks them only slightly
    default = Lime(model, tokenizer, n_perturbations=300, distance=distance, progress=False)
    torch.testing.assert_close(
        default(" ".join(WORDS), "positive")[0].attributions[0], expected, atol=0.01, rtol=0.01
    )


@pytest.mark.parametrize("distance", ["cosine", "hamming"])
def test_lime_weights_decrease_with_distance(distance):
    n = 10
    # row k keeps the first n - k elements: k = 0 is the original input
    present = torch.arange(n)[None, :] < (n - torch.arange(n + 1))[:, None]
    weights = lime_kernel(present, distance=distance, kernel_width=0.5)
    assert weights[0] == 1.0
    assert (weights[1:] < weights[:-1]).all()
    kept = (n - torch.arange(n + 1)) / n
    d = 1 - kept.sqrt() if distance == "cosine" else 1 - kept
    torch.testing.assert_close(weights, torch.exp(-(d.double() ** 2) / 0.25))
    # a narrower kernel is more local: far rows lose more weight
    narrow = lime_kernel(present, distance=distance, kernel_width=0.2)
    assert (narrow[1:] < weights[1:]).all()
    with pytest.raises(ValueError, match="distance='euclid' is unknown"):
        lime_kernel(present, distance="euclid")


def test_weighted_ridge_equals_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 7, generator=generator) > 0.5).double()
    y = torch.randn(60, generator=generator, dtype=torch.float64)
    weights = torch.rand(60, generator=generator, dtype=torch.float64)
    for alpha in (0.0, 0.3, 5.0):
        beta, intercept = weighted_ridge(x, y, weights, alpha)
        reference = Ridge(alpha=alpha).fit(x.numpy(), y.numpy(), sample_weight=weights.numpy())
        # float64 throughout: a fraction 1e-9 of the magnitudes leaves room for the solvers' round-off only
        assert_close_to_scale(beta, reference.coef_, fraction=1e-9)
        assert_close_to_scale(intercept, reference.intercept_, scale=y, fraction=1e-9)
    # a constant column and alpha = 0: the minimum-norm solution, no error
    beta, _ = weighted_ridge(torch.ones(5, 2), torch.arange(5.0), torch.ones(5), 0.0)
    torch.testing.assert_close(beta, torch.zeros(2, dtype=torch.float64))


def test_lime_one_element_closed_form():
    """Every row removes the only element: beta = effect * s / (s + alpha), s = N w / (1 + N w)."""
    model, tokenizer = additive_classifier(EFFECTS)
    n_rows, alpha, width = 100, 0.01, 0.5
    out = Lime(model, tokenizer, n_perturbations=n_rows, alpha=alpha, kernel_width=width, progress=False)(
        "great", "positive"
    )[0]
    w = math.exp(-1 / width**2)  # cosine distance of the empty row: 1
    s = n_rows * w / (1 + n_rows * w)
    assert_close_to_scale(out.attributions[0, 0].item(), 2.0 * s / (s + alpha))


def test_lime_two_elements_and_real_model(bert):
    model, tokenizer = additive_classifier(EFFECTS)
    out = Lime(model, tokenizer, alpha=0.0, progress=False)("great awful", "positive")[0]
    assert_close_to_scale(out.attributions[0], torch.tensor([2.0, -3.0]))
    model, tokenizer = bert
    for text in ("great", "great movie"):
        out = Lime(model, tokenizer, n_perturbations=20, progress=False)(text, [0, 1, 2])[0]
        assert torch.isfinite(out.attributions).all()


def test_lime_same_seed_same_values(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    text = "the movie was really great but the end felt long"
    first, again, other = (
        Lime(model, tokenizer, n_perturbations=100, seed=seed, progress=False)(text, [0, 2])[0]
        for seed in (0, 0, 1)
    )
    assert torch.equal(first.attributions, again.attributions)
    assert not torch.allclose(first.attributions, other.attributions, atol=1e-3)


def test_lime_generation_regresses_each_target_on_its_visible_elements(gpt2):
    """The explainer's rows, rescored here in one plain model call, fitted with scikit-learn per target."""
    model, tokenizer = gpt2
    prompt, continuation = "the cat sat on the mat", " and the dog"
    explainer = Lime(model, tokenizer, n_perturbations=64, alpha=0.1, progress=False)
    out = explainer(prompt, continuation)[0]
    sample = make_task(model, tokenizer).prepare(prompt, continuation, explainer._granularity())[0]
    masks = explainer.masks(sample, explainer.generator())
    assert not masks[:, ~sample.visible.any(0)].any()  # the last continuation token is never fed
    removed = masks.float() @ element_matrix(sample).T > 0
    ids = torch.cat(
        [
            sample.input_ids[None],
            sample.input_ids.masked_fill(removed, tokenizer(" ", add_special_tokens=False)["input_ids"][0]),
        ]
    )
    n_prompt = len(tokenizer(prompt)["input_ids"])
    with torch.no_grad():
        log_probs = model(ids).logits[:, n_prompt - 1 :].log_softmax(-1)
    scores = log_probs[:, torch.arange(sample.n_targets), sample.target_ids].double().numpy()
    present = torch.cat([torch.ones(1, sample.n_elements, dtype=torch.bool), ~masks])
    for target in range(sample.n_targets):
        visible = sample.visible[target]
        rows = present[:, visible]
        weights = lime_kernel(rows, "cosine", 0.5).numpy()
        reference = Ridge(alpha=0.1).fit(rows.double().numpy(), scores[:, target], sample_weight=weights)
        # the scores are float32 log-probabilities: the coefficients' round-off is a fraction of them
        assert_close_to_scale(out.attributions[target, visible], reference.coef_, scale=scores[:, target])
        assert torch.isnan(out.attributions[target, ~visible]).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_perturbations": 0}, "n_perturbations must be a positive integer"),
        ({"kernel_width": 0.0}, "kernel_width must be a positive number"),
        ({"alpha": -1.0}, "alpha must be a number >= 0"),
        ({"distance": "l2"}, "distance='l2' is unknown"),
        ({"seed": None}, "seed must be an integer"),
    ],
)
def test_lime_parameter_errors(bert, arguments, message):
    model, tokenizer = bert
    with pytest.raises(ValueError, match=message):
        Lime(model, tokenizer, progress=False, **arguments)("the movie")
