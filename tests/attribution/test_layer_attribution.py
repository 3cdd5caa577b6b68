"""Layer attribution (`split_point=`): attributions to the hidden states a layer outputs, per element."""

from __future__ import annotations

import math

import pytest
import torch

from interpreto import IntegratedGradients, Occlusion
from interpreto.model.tokens import replacement_token_id
from tests.conftest import ALL_METHODS, assert_unchanged, scaled_head, snapshot
from tests.tolerance import assert_close_to_scale, magnitude

TEXT = "the movie was really great fun"
SAMPLED = {"IntegratedGradients", "GradientShap", "SmoothGrad", "SquareGrad", "VarGrad", "Lime", "KernelShap"}


@pytest.fixture(scope="module")
def classifier(bert):
    model, tokenizer = bert
    return scaled_head(model, 10.0), tokenizer


def _encoded(tokenizer, text=TEXT):
    encoded = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    special = encoded.pop("special_tokens_mask")[0].bool()
    return encoded, special


def _layer_output(model, module, encoded) -> torch.Tensor:
    """The layer's output hidden states, read by hand with a hook."""
    seen = []
    handle = module.register_forward_hook(lambda _m, _a, output: seen.append(output.detach()))
    try:
        with torch.no_grad():
            model(**encoded)
    finally:
        handle.remove()
    return seen[0]


def _logits_with(model, module, encoded, hidden) -> torch.Tensor:
    """The model's logits with the layer's output replaced by `hidden`, by hand with a hook."""
    handle = module.register_forward_hook(lambda _m, _a, output: hidden)
    try:
        with torch.no_grad():
            return model(**{k: v.expand(hidden.shape[0], -1) for k, v in encoded.items()}).logits
    finally:
        handle.remove()


@pytest.mark.parametrize("layer", [0, 1])
def test_ig_at_layer_equals_captum_layer_integrated_gradients(classifier, layer):
    captum = pytest.importorskip("captum.attr")
    model, tokenizer = classifier
    module = model.bert.encoder.layer[layer]
    encoded, special = _encoded(tokenizer)
    baseline_ids = encoded["input_ids"].masked_fill(~special, replacement_token_id(tokenizer))
    ours = IntegratedGradients(model, tokenizer, granularity="token", split_point=layer, progress=False)(
        TEXT
    )[0]
    # the same layer baseline: the baseline input's hidden states, the input's at [CLS] and [SEP]
    kept = _layer_output(model, module, encoded)[0, special]

    def keep_special(_module, _args, output):
        output = output.clone()
        output[:, special] = kept
        return output

    handle = module.register_forward_hook(keep_special)
    try:
        explainer = captum.LayerIntegratedGradients(lambda ids: model(input_ids=ids).logits, module)
        reference = explainer.attribute(
            encoded["input_ids"], baseline_ids, target=ours.targets[0], n_steps=50, method="gausslegendre"
        )
    finally:
        handle.remove()
    per_token = reference[0].sum(-1).detach()[~special]
    assert_close_to_scale(ours.attributions[0], per_token)
    assert per_token.abs().max() > 1e-3 or layer == 1  # layer 1 of BERT: only [CLS] reaches the pooler


@pytest.mark.parametrize("split_point", [0, 1, "bert.encoder.layer.1.attention.self.value"])
def test_ig_completeness_at_layer_classification(classifier, split_point):
    model, tokenizer = classifier
    out = IntegratedGradients(model, tokenizer, split_point=split_point, progress=False)(TEXT)[0]
    total = out.attributions.sum(-1)
    # split point 1: the text positions do not reach the score, total ~ 0 and the delta is the round-off of
    # f(x) - f(b), a fraction of the scores
    assert out.convergence_delta.abs().max() <= 0.01 * total.abs().max() + 1e-4 * out.scores.abs().max()
    if split_point != 1:  # text positions of the last block do not reach BERT's [CLS] pooler
        assert total.abs().max() > 0.1


@pytest.mark.parametrize(("model_name", "split_point"), [("llama", 1), ("gpt2", 0)])
def test_ig_completeness_at_layer_generation(request, model_name, split_point):
    model, tokenizer = request.getfixturevalue(model_name)
    out = IntegratedGradients(model, tokenizer, split_point=split_point, n_perturbations=50, progress=False)(
        "the cat sat on", " the mat"
    )[0]
    total = out.attributions.nan_to_num().sum(-1)
    expected = total - out.convergence_delta  # f(x) - f(b) per target
    assert (out.convergence_delta.abs() <= 0.01 * expected.abs() + 1e-4 * out.scores.abs()).all()
    assert total.abs().max() > 1e-3


def test_occlusion_at_layer_equals_hand_differences(classifier):
    model, tokenizer = classifier
    module = model.bert.encoder.layer[0]
    encoded, special = _encoded(tokenizer)
    baseline_ids = encoded["input_ids"].masked_fill(~special, replacement_token_id(tokenizer))
    out = Occlusion(model, tokenizer, granularity="token", split_point=0, progress=False)(TEXT)[0]
    inputs = _layer_output(model, module, encoded)
    baseline = _layer_output(model, module, {**encoded, "input_ids": baseline_ids})
    target = out.targets[0]
    full = _logits_with(model, module, encoded, inputs)[0, target]
    expected = []
    for position in torch.nonzero(~special).flatten().tolist():
        occluded = inputs.clone()
        occluded[:, position] = baseline[:, position]
        expected.append(full - _logits_with(model, module, encoded, occluded)[0, target])
    # differences of logits: their round-off is a fraction of the logits, not of the differences
    expected = torch.stack(expected)
    assert_close_to_scale(out.attributions[0], expected, scale=magnitude(full, expected))
    assert_close_to_scale(out.scores[0], full)


def test_split_point_by_index_or_path_agree(classifier):
    model, tokenizer = classifier
    by_index = Occlusion(model, tokenizer, split_point=0, progress=False)(TEXT)[0]
    by_path = Occlusion(model, tokenizer, split_point="bert.encoder.layer.0", progress=False)(TEXT)[0]
    default = Occlusion(model, tokenizer, progress=False)(TEXT)[0]
    torch.testing.assert_close(by_index.attributions, by_path.attributions)
    assert not torch.allclose(by_index.attributions, default.attributions)


def _explainer(method, model, tokenizer, **kwargs):
    sampled = {"n_perturbations": 8} if method.__name__ in SAMPLED else {}
    return method(model, tokenizer, progress=False, **sampled, **kwargs)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_method_runs_at_a_layer(classifier, llama, method):
    model, tokenizer = classifier
    out = _explainer(method, model, tokenizer, split_point=1, granularity="token")(TEXT)[0]
    assert out.attributions.shape == (1, 8) and torch.isfinite(out.attributions).all()
    at_layer_0 = _explainer(method, model, tokenizer, split_point=0, granularity="token")(TEXT)[0]
    assert torch.isfinite(at_layer_0.attributions).all() and at_layer_0.attributions.abs().max() > 0
    model, tokenizer = llama
    out = _explainer(method, model, tokenizer, split_point=1)("the cat sat", " on the mat")[0]
    n_prompt = out.n_prompt_elements
    assert out.attributions.shape == (len(out.targets), n_prompt + len(out.targets))
    assert (
        torch.isfinite(out.attributions[:, :n_prompt]).all()
        and out.attributions[:, :n_prompt].abs().max() > 0
    )
    assert math.isnan(out.attributions[0, n_prompt])  # the first target cannot see the continuation


@pytest.mark.parametrize("split_point", [7, -9, "bert.encoder.nope", [0, 1], True, 1.5])
def test_bad_split_point_raises_naming_it(classifier, split_point):
    model, tokenizer = classifier
    with pytest.raises(ValueError, match="split_point"):
        Occlusion(model, tokenizer, split_point=split_point, progress=False)(TEXT)


def test_split_point_without_hidden_states_raises(classifier):
    model, tokenizer = classifier
    with pytest.raises(ValueError, match="split_point"):
        IntegratedGradients(model, tokenizer, split_point="classifier", progress=False)(TEXT)


# model calls: 1 predicts the class; IG: 2 reads the input's hidden states, 3 the baseline's, 4 runs the path
# with them replaced; Occlusion: 2 reads both, 3 runs the masked rows with them replaced
@pytest.mark.parametrize(
    ("method", "fail_at"), [(IntegratedGradients, 2), (IntegratedGradients, 4), (Occlusion, 3)]
)
def test_no_hook_left_after_a_call_that_raised_midway(classifier, method, fail_at):
    """A forward pass that raises while the layer is read or replaced still leaves no hook behind."""
    model, tokenizer = classifier
    calls = []

    def fail(*_args):
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("boom")

    handle = model.classifier.register_forward_hook(fail)
    try:
        before = snapshot(model, tokenizer)
        with pytest.raises(RuntimeError, match="boom"):
            method(model, tokenizer, split_point=0, progress=False)(TEXT)
        assert_unchanged(before, snapshot(model, tokenizer))
    finally:
        handle.remove()


def test_split_point_is_recorded_and_saved(classifier, tmp_path):
    from interpreto import AttributionOutput

    model, tokenizer = classifier
    out = Occlusion(model, tokenizer, split_point=0, progress=False)("a fine film", targets=1)[0]
    assert out.split_point == "bert.encoder.layer.0"
    out.save(tmp_path / "layer.json")
    assert AttributionOutput.load(tmp_path / "layer.json").split_point == "bert.encoder.layer.0"
    assert Occlusion(model, tokenizer, progress=False)("a fine film", targets=1)[0].split_point is None


def test_sensitivity_refuses_a_layer_explainer(classifier):
    from interpreto.evaluation import Sensitivity

    model, tokenizer = classifier
    explainer = IntegratedGradients(model, tokenizer, n_perturbations=4, split_point=0, progress=False)
    explanations = explainer("a fine film", targets=1)
    with pytest.raises(ValueError, match="explainer has a split_point"):
        Sensitivity(model, tokenizer, n_samples=1, progress=False).evaluate(explanations, explainer)
