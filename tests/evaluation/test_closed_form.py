"""Metrics against closed forms on the additive classifier, whose logit is a known sum of word effects."""

from __future__ import annotations

import itertools

import pytest
import torch

from interpreto import AttributionOutput, Occlusion, Saliency
from interpreto.evaluation import (
    AOPC,
    Comprehensiveness,
    Deletion,
    Infidelity,
    Insertion,
    Sensitivity,
    Sufficiency,
)
from interpreto.zoo import additive_classifier
from tests.tolerance import assert_close_to_scale

EFFECTS = {"great": 3.0, "fine": 2.0, "ok": 1.0, "meh": 0.0, "bad": -1.0}
TEXT = "great fine ok meh bad"
BIAS = 0.5


@pytest.fixture(scope="module")
def additive():
    return additive_classifier(EFFECTS, bias=BIAS)


@pytest.fixture(scope="module")
def occlusion(additive):
    model, tokenizer = additive
    return Occlusion(model, tokenizer, progress=False)([TEXT], targets=1)


def _with_attributions(output: AttributionOutput, rows: list[list[float]]) -> list[AttributionOutput]:
    """Copies of `output` holding other attributions (one per row)."""
    copies = []
    for row in rows:
        data = output.to_dict()
        data["attributions"] = [row]
        copies.append(AttributionOutput.from_dict(data))
    return copies


def _logit_after_removing(effects: list[float]) -> float:
    return BIAS + sum(EFFECTS.values()) - sum(effects)


def test_occlusion_recovers_the_effects(occlusion):
    assert_close_to_scale(occlusion[0].attributions[0], list(EFFECTS.values()))


@pytest.mark.parametrize("score", ["logits", "probabilities"])
def test_true_effect_order_gives_the_best_deletion_and_insertion_auc_and_reverse_the_worst(
    additive, occlusion, score
):
    model, tokenizer = additive
    n = len(EFFECTS)
    # one explanation per ranking of the five words: attribution n - position for the word at each position
    permutations = list(itertools.permutations(range(n)))
    rows = [[float(n - order.index(i)) for i in range(n)] for order in permutations]
    candidates = _with_attributions(occlusion[0], rows)
    deletion = Deletion(model, tokenizer, n_steps=n, score=score, progress=False)
    insertion = Insertion(model, tokenizer, n_steps=n, score=score, progress=False)
    all_deletion = deletion.evaluate(candidates).per_input
    all_insertion = insertion.evaluate(candidates).per_input
    true = deletion.evaluate(occlusion).per_input[0]
    reverse = deletion.evaluate(occlusion, order="reverse").per_input[0]
    # the same rows scored in other batches: probabilities may differ by a few float32 ulps (vectorized exp)
    assert_close_to_scale(true, all_deletion.min())
    assert_close_to_scale(reverse, all_deletion.max())
    assert_close_to_scale(insertion.evaluate(occlusion).per_input[0], all_insertion.max())
    assert_close_to_scale(insertion.evaluate(occlusion, order="reverse").per_input[0], all_insertion.min())
    random = deletion.evaluate(occlusion, order="random", seed=0).per_input[0]
    tolerance = 1e-4 * max(abs(true), abs(reverse))  # a random order may equal an end: round-off apart
    assert true - tolerance <= random <= reverse + tolerance


def test_deletion_auc_equals_the_hand_trapezoid_of_the_step_curve(additive, occlusion):
    model, tokenizer = additive
    result = Deletion(model, tokenizer, n_steps=5, score="logits", progress=False).evaluate(occlusion)
    removed = [[], [3.0], [3.0, 2.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0, -1.0]]
    curve = [_logit_after_removing(effects) for effects in removed]
    assert_close_to_scale(result.curve, curve)
    hand = 0.2 * (curve[0] / 2 + sum(curve[1:-1]) + curve[-1] / 2)
    assert_close_to_scale(result.auc, hand)
    assert result.steps.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert not result.higher_is_better


def test_insertion_curve_rounds_fractions_to_element_counts(additive, occlusion):
    model, tokenizer = additive
    result = Insertion(model, tokenizer, n_steps=2, score="logits", progress=False).evaluate(occlusion)
    # 5 elements, fractions 0, 0.5, 1 -> 0, 3 (2.5 rounded half up), 5 elements kept
    kept = [[], [3.0, 2.0, 1.0], list(EFFECTS.values())]
    curve = [BIAS + sum(effects) for effects in kept]
    assert_close_to_scale(result.curve, curve)
    assert_close_to_scale(result.auc, 0.5 * (curve[0] / 2 + curve[1] + curve[2] / 2))
    assert result.higher_is_better


def test_comprehensiveness_sufficiency_and_aopc_equal_hand_values(additive, occlusion):
    model, tokenizer = additive
    full = _logit_after_removing([])
    comprehensiveness = Comprehensiveness(
        model, tokenizer, fractions=(0.2, 0.4), score="logits", progress=False
    )
    # differences of logits near `full`: their round-off is a fraction of the logits
    assert_close_to_scale(comprehensiveness.evaluate(occlusion).value, (3.0 + 5.0) / 2, scale=full)
    sufficiency = Sufficiency(model, tokenizer, fractions=(0.2, 0.4), score="logits", progress=False)
    only = [BIAS + 3.0, BIAS + 5.0]  # logits with only the top 1, then top 2 words kept
    assert_close_to_scale(sufficiency.evaluate(occlusion).value, sum(full - v for v in only) / 2, scale=full)
    aopc = AOPC(model, tokenizer, max_elements=2, score="logits", progress=False).evaluate(occlusion)
    assert_close_to_scale(aopc.value, (0.0 + 3.0 + 5.0) / 3, scale=full)
    assert_close_to_scale(aopc.curve, [0.0, 3.0, 5.0], scale=full)
    # a fraction below one element still removes one (ceil), as in ERASER's top-k
    tiny = Comprehensiveness(model, tokenizer, fractions=(0.01,), score="logits", progress=False)
    assert_close_to_scale(tiny.evaluate(occlusion).value, 3.0, scale=full)


def test_infidelity_is_zero_for_exact_effects_and_positive_otherwise(additive, occlusion):
    model, tokenizer = additive
    raw = Infidelity(model, tokenizer, normalize=False, progress=False)
    # a mean of squared residuals sum(a) - (f(x) - f(x without S)): (a fraction 1e-4 of the scores)^2
    full = _logit_after_removing([])
    assert_close_to_scale(raw.evaluate(occlusion).value, 0.0, scale=full**2, fraction=1e-8)
    normalized = Infidelity(model, tokenizer, progress=False)
    scaled = _with_attributions(occlusion[0], [[2 * e for e in EFFECTS.values()]])
    # 1 - cos^2 in [0, 1]: the same squared fraction of 1; the scale is fitted away
    assert_close_to_scale(normalized.evaluate(scaled).value, 0.0, scale=1.0, fraction=1e-8)
    assert raw.evaluate(scaled).value > 1.0
    shuffled = _with_attributions(occlusion[0], [[-1.0, 0.0, 3.0, 1.0, 2.0]])
    value = normalized.evaluate(shuffled).value
    assert 0.2 < value <= 1.0


def test_saliency_on_an_additive_model_has_zero_sensitivity(additive):
    model, tokenizer = additive
    explainer = Saliency(model, tokenizer, progress=False)
    explanations = explainer([TEXT], targets=1)
    result = Sensitivity(model, tokenizer, n_samples=4, radius=0.1, progress=False).evaluate(
        explanations, explainer
    )
    # the gradient of a linear model is constant; SENS is relative to ||a(x)||: a fraction of 1
    assert_close_to_scale(result.value, 0.0, scale=1.0)


def test_metric_results_are_json_ready_and_plot(additive, occlusion, tmp_path):
    import json

    from matplotlib.figure import Figure

    model, tokenizer = additive
    result = Deletion(model, tokenizer, n_steps=4, progress=False).evaluate(occlusion)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["metric"] == "Deletion" and data["higher_is_better"] is False
    assert len(data["curve"]) == 5 and data["value"] == pytest.approx(result.auc)
    ax = result.plot(ax=Figure().subplots())  # no pyplot figure left open for other tests
    assert ax.get_xlabel() == "fraction of elements removed"
    assert len(ax.lines) == 1
    histogram = Infidelity(model, tokenizer, progress=False).evaluate(occlusion).plot(ax=Figure().subplots())
    assert histogram.get_xlabel() == "Infidelity per input"
    assert torch.isfinite(result.per_input).all()
