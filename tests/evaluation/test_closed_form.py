"""Metrics against closed forms on the additive classifier, whose logit is a known sum of word effects."""

from __future__ import annotations

import itertools
import math

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
    assert occlusion[0].attributions[0].tolist() == pytest.approx(list(EFFECTS.values()), abs=1e-5)


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
    assert true == pytest.approx(float(all_deletion.min()), abs=1e-9)
    assert reverse == pytest.approx(float(all_deletion.max()), abs=1e-9)
    assert insertion.evaluate(occlusion).per_input[0] == pytest.approx(float(all_insertion.max()), abs=1e-9)
    assert insertion.evaluate(occlusion, order="reverse").per_input[0] == pytest.approx(
        float(all_insertion.min()), abs=1e-9
    )
    random = deletion.evaluate(occlusion, order="random", seed=0).per_input[0]
    assert true < random < reverse or math.isclose(random, true) or math.isclose(random, reverse)


def test_deletion_auc_equals_the_hand_trapezoid_of_the_step_curve(additive, occlusion):
    model, tokenizer = additive
    result = Deletion(model, tokenizer, n_steps=5, score="logits", progress=False).evaluate(occlusion)
    removed = [[], [3.0], [3.0, 2.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0, -1.0]]
    curve = [_logit_after_removing(effects) for effects in removed]
    assert result.curve.tolist() == pytest.approx(curve, abs=1e-5)
    hand = 0.2 * (curve[0] / 2 + sum(curve[1:-1]) + curve[-1] / 2)
    assert result.auc == pytest.approx(hand, abs=1e-5)
    assert result.steps.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert not result.higher_is_better


def test_insertion_curve_rounds_fractions_to_element_counts(additive, occlusion):
    model, tokenizer = additive
    result = Insertion(model, tokenizer, n_steps=2, score="logits", progress=False).evaluate(occlusion)
    # 5 elements, fractions 0, 0.5, 1 -> 0, 3 (2.5 rounded half up), 5 elements kept
    kept = [[], [3.0, 2.0, 1.0], list(EFFECTS.values())]
    curve = [BIAS + sum(effects) for effects in kept]
    assert result.curve.tolist() == pytest.approx(curve, abs=1e-5)
    assert result.auc == pytest.approx(0.5 * (curve[0] / 2 + curve[1] + curve[2] / 2), abs=1e-5)
    assert result.higher_is_better


def test_comprehensiveness_sufficiency_and_aopc_equal_hand_values(additive, occlusion):
    model, tokenizer = additive
    full = _logit_after_removing([])
    comprehensiveness = Comprehensiveness(
        model, tokenizer, fractions=(0.2, 0.4), score="logits", progress=False
    )
    assert comprehensiveness.evaluate(occlusion).value == pytest.approx((3.0 + 5.0) / 2, abs=1e-5)
    sufficiency = Sufficiency(model, tokenizer, fractions=(0.2, 0.4), score="logits", progress=False)
    only = [BIAS + 3.0, BIAS + 5.0]  # logits with only the top 1, then top 2 words kept
    assert sufficiency.evaluate(occlusion).value == pytest.approx(sum(full - v for v in only) / 2, abs=1e-5)
    aopc = AOPC(model, tokenizer, max_elements=2, score="logits", progress=False).evaluate(occlusion)
    assert aopc.value == pytest.approx((0.0 + 3.0 + 5.0) / 3, abs=1e-5)
    assert aopc.curve.tolist() == pytest.approx([0.0, 3.0, 5.0], abs=1e-5)
    # a fraction below one element still removes one (ceil), as in ERASER's top-k
    tiny = Comprehensiveness(model, tokenizer, fractions=(0.01,), score="logits", progress=False)
    assert tiny.evaluate(occlusion).value == pytest.approx(3.0, abs=1e-5)


def test_infidelity_is_zero_for_exact_effects_and_positive_otherwise(additive, occlusion):
    model, tokenizer = additive
    raw = Infidelity(model, tokenizer, normalize=False, progress=False)
    assert raw.evaluate(occlusion).value == pytest.approx(0.0, abs=1e-9)
    normalized = Infidelity(model, tokenizer, progress=False)
    scaled = _with_attributions(occlusion[0], [[2 * e for e in EFFECTS.values()]])
    assert normalized.evaluate(scaled).value == pytest.approx(0.0, abs=1e-9)  # the scale is fitted away
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
    assert result.value == pytest.approx(0.0, abs=1e-6)  # the gradient of a linear model is constant


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
