"""Metrics on trained models with planted truth, on generation, on sentence pairs, and through compare()."""

from __future__ import annotations

import json

import pytest
import torch

from interpreto import (
    AttributionOutput,
    IntegratedGradients,
    Occlusion,
    Saliency,
    load_explanations,
    save_explanations,
)
from interpreto.evaluation import (
    AOPC,
    Comprehensiveness,
    Deletion,
    Infidelity,
    Insertion,
    Sensitivity,
    Sufficiency,
    compare,
)
from tests.tolerance import assert_close_to_scale


@pytest.fixture(scope="module")
def planted_explanations(planted):
    from interpreto.zoo import planted_sentences

    model, tokenizer = planted
    texts = [text for text, _, _ in planted_sentences(20, seed=321)]
    return {
        "Occlusion": Occlusion(model, tokenizer, progress=False)(texts),
        "IntegratedGradients": IntegratedGradients(model, tokenizer, progress=False)(texts),
    }


@pytest.mark.parametrize("method", ["Occlusion", "IntegratedGradients"])
def test_occlusion_and_ig_beat_random_order_on_deletion_and_insertion(planted, planted_explanations, method):
    model, tokenizer = planted
    explanations = planted_explanations[method]
    deletion = Deletion(model, tokenizer, n_steps=10, progress=False)
    insertion = Insertion(model, tokenizer, n_steps=10, progress=False)
    ours, random = deletion.evaluate(explanations), deletion.evaluate(explanations, order="random", seed=0)
    # the marker decides the label: removing it first drops the probability at once
    assert ours.auc < random.auc - 0.15, (ours.auc, random.auc)
    assert (ours.per_input < random.per_input).float().mean() >= 0.9
    ours, random = insertion.evaluate(explanations), insertion.evaluate(explanations, order="random", seed=0)
    assert ours.auc > random.auc + 0.15, (ours.auc, random.auc)
    comprehensiveness = Comprehensiveness(model, tokenizer, progress=False)
    sufficiency = Sufficiency(model, tokenizer, progress=False)
    assert (
        comprehensiveness.evaluate(explanations).value
        > comprehensiveness.evaluate(explanations, "random").value
    )
    assert sufficiency.evaluate(explanations).value < sufficiency.evaluate(explanations, "random").value


def test_random_order_is_deterministic_with_seed(planted, planted_explanations):
    model, tokenizer = planted
    metric = AOPC(model, tokenizer, max_elements=3, progress=False)
    explanations = planted_explanations["Occlusion"][:4]
    first = metric.evaluate(explanations, order="random", seed=3).per_input
    assert torch.equal(first, metric.evaluate(explanations, order="random", seed=3).per_input)
    assert not torch.equal(first, metric.evaluate(explanations, order="random", seed=4).per_input)


def test_generation_scores_each_continuation_token_and_occlusion_beats_random():
    from interpreto.zoo import copy_task_lm, copy_task_prompts

    model, tokenizer = copy_task_lm(seed=0)
    rows = copy_task_prompts(12, seed=99)
    explanations = Occlusion(model, tokenizer, progress=False)(
        [prompt for prompt, _, _ in rows], [continuation for _, continuation, _ in rows]
    )
    deletion = Deletion(model, tokenizer, n_steps=8, score="probabilities", progress=False)
    result = deletion.evaluate(explanations)
    # fraction 0 is the input itself: the first curve point is the mean probability of the continuation tokens
    mean_probability = torch.stack([out.scores.exp().mean() for out in explanations]).mean()
    assert_close_to_scale(result.curve[0], mean_probability)
    assert result.auc < deletion.evaluate(explanations, order="random", seed=0).auc - 0.2


def test_sentence_pairs_and_chat_prompts_round_trip_through_files(bert, llama, tmp_path):
    model, tokenizer = bert
    pair = Occlusion(model, tokenizer, progress=False)([("a fine film", "it was good")], targets=1)
    lm, lm_tokenizer = llama
    chat = [{"role": "user", "content": "name a colour"}]
    prompt = Occlusion(lm, lm_tokenizer, progress=False)(chat, targets=" red")
    path = tmp_path / "explanations.json"
    save_explanations(pair + prompt, path)
    loaded = load_explanations(path)
    assert loaded[0].source == {"first": "a fine film", "second": "it was good", "explain_second": True}
    assert loaded[1].source == chat
    for explanations, (m, t) in ((loaded[:1], (model, tokenizer)), (loaded[1:], (lm, lm_tokenizer))):
        direct = Deletion(m, t, n_steps=2, score=None, progress=False).evaluate(explanations)
        assert_close_to_scale(direct.curve[0], explanations[0].scores.mean(), scale=explanations[0].scores)


def test_compare_builds_a_table_with_a_random_row_and_na_for_sensitivity(planted):
    from interpreto.zoo import planted_sentences

    model, tokenizer = planted
    texts = [text for text, _, _ in planted_sentences(6, seed=7)]
    metrics = [
        Deletion(model, tokenizer, n_steps=5, progress=False),
        Infidelity,
        Sensitivity(model, tokenizer, n_samples=2, progress=False),
    ]
    table = compare(
        {"occlusion": Occlusion, "saliency": Saliency(model, tokenizer, progress=False)},
        model,
        tokenizer,
        texts,
        metrics,
    )
    assert table.methods == ["occlusion", "saliency", "random order"]
    columns = table.to_dict()
    assert list(columns) == [
        "method",
        "Deletion AUC ↓",
        "Deletion AUC ↓ ci95",
        "Infidelity ↓",
        "Infidelity ↓ ci95",
        "Sensitivity ↓",
        "Sensitivity ↓ ci95",
        "seconds per explanation",
    ]
    assert (
        columns["Sensitivity ↓"][0] != columns["Sensitivity ↓"][0]
    )  # NaN: occlusion is not a gradient method
    assert columns["Sensitivity ↓"][1] >= 0
    assert columns["Deletion AUC ↓"][0] < columns["Deletion AUC ↓"][2]  # occlusion beats the random order
    assert table.results["occlusion"]["Deletion AUC ↓"].per_input.shape == (6,)
    markdown = table.to_markdown()
    assert "| random order |" in markdown and "n/a" in markdown
    json.dumps({"table": columns, "results": [r.to_dict() for r in table.results["occlusion"].values()]})


def _output(text: str = "a fine film") -> AttributionOutput:
    return AttributionOutput(
        text=text,
        elements=["a", "fine", "film"],
        attributions=torch.ones(1, 3),
        targets=[1],
        target_names=["x"],
        scores=torch.zeros(1),
    )


def test_bad_inputs_raise_errors_naming_the_argument(bert, planted):
    model, tokenizer = bert
    deletion = Deletion(model, tokenizer, progress=False)
    with pytest.raises(ValueError, match="explanations is empty"):
        deletion.evaluate([])
    with pytest.raises(TypeError, match=r"explanations\[0\] is a str"):
        deletion.evaluate(["a fine film"])
    with pytest.raises(ValueError, match="order='best' is unknown"):
        deletion.evaluate([_output()], order="best")
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        Deletion(model, tokenizer, n_steps=0).evaluate([_output()])
    with pytest.raises(ValueError, match="fractions must be"):
        Comprehensiveness(model, tokenizer, fractions=(0.0, 2.0)).evaluate([_output()])
    with pytest.raises(
        ValueError, match=r"explanations\[0\]: preparing its input again gives other elements"
    ):
        deletion.evaluate([_output("completely different words here")])
    with pytest.raises(ValueError, match="Infidelity reads the attributions"):
        Infidelity(model, tokenizer).evaluate([_output()], order="random")
    with pytest.raises(TypeError, match="Sensitivity re-runs a gradient method"):
        Sensitivity(model, tokenizer).evaluate([_output()], Occlusion(model, tokenizer))
    other_model, other_tokenizer = planted
    with pytest.raises(ValueError, match="explainer explains another model"):
        Sensitivity(model, tokenizer).evaluate([_output()], Saliency(other_model, other_tokenizer))
    with pytest.raises(TypeError, match="methods: .* is not an attribution method"):
        compare([len], model, tokenizer, ["a fine film"], [Deletion])


def test_metrics_leave_the_model_and_tokenizer_unchanged(bert):
    from tests.conftest import assert_unchanged, snapshot

    model, tokenizer = bert
    model.train()
    before = snapshot(model, tokenizer)
    explainer = IntegratedGradients(model, tokenizer, n_perturbations=4, progress=False)
    explanations = explainer(["a fine film", "dull and long"])
    for metric in (Deletion, Insertion, Comprehensiveness, Sufficiency, AOPC, Infidelity):
        metric(model, tokenizer, progress=False).evaluate(explanations)
    Sensitivity(model, tokenizer, n_samples=2, progress=False).evaluate(explanations, explainer)
    with pytest.raises(ValueError):
        Deletion(model, tokenizer).evaluate([_output("other words entirely")])
    assert_unchanged(before, snapshot(model, tokenizer))
    model.eval()
