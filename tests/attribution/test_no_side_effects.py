"""No call changes the user's model or tokenizer: not on success, not when it raises."""

from __future__ import annotations

import pytest
import torch

from interpreto import (
    GradientShap,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    SmoothGrad,
    SquareGrad,
    VarGrad,
)
from tests.conftest import ALL_METHODS, assert_unchanged, snapshot

SAMPLED = {IntegratedGradients, GradientShap, SmoothGrad, SquareGrad, VarGrad, Lime, KernelShap}


def _explainer(method, model, tokenizer):
    return method(model, tokenizer, progress=False, **({"n_perturbations": 8} if method in SAMPLED else {}))


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("train_mode", [True, False])
def test_classifier_unchanged_and_explained_in_eval_mode(bert, method, train_mode):
    model, tokenizer = bert
    model.train(train_mode)
    model.bert.encoder.layer[0].eval()  # a mixed state must come back as it was, module by module
    before = snapshot(model, tokenizer)
    first = _explainer(method, model, tokenizer)("the movie was great")[0]
    assert_unchanged(before, snapshot(model, tokenizer))
    # dropout is off during the call: two calls give identical numbers even on a model handed in train mode
    again = _explainer(method, model, tokenizer)("the movie was great")[0]
    torch.testing.assert_close(first.attributions, again.attributions)
    model.eval()


@pytest.mark.parametrize("method", ALL_METHODS)
def test_decoder_without_pad_token_unchanged(gpt2, method):
    model, tokenizer = gpt2
    assert tokenizer.pad_token is None
    before = snapshot(model, tokenizer)
    _explainer(method, model, tokenizer)("the cat sat", " on the mat")
    _explainer(method, model, tokenizer)("the cat sat", None, max_new_tokens=3)
    assert_unchanged(before, snapshot(model, tokenizer))


def test_frozen_and_trainable_parameters_keep_requires_grad(llama):
    model, tokenizer = llama
    model.model.layers[0].requires_grad_(False)
    model.lm_head.weight.grad = None
    before = snapshot(model, tokenizer)
    IntegratedGradients(model, tokenizer, n_perturbations=4, progress=False)("the cat sat", " on the mat")
    assert_unchanged(before, snapshot(model, tokenizer))
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(True)


def test_user_hooks_kept_and_none_added(bert):
    model, tokenizer = bert
    calls = []
    handle = model.bert.encoder.layer[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        before = snapshot(model, tokenizer)
        Occlusion(model, tokenizer, progress=False)("the movie was great")
        assert_unchanged(before, snapshot(model, tokenizer))
        assert calls  # the user's hook still runs
    finally:
        handle.remove()


@pytest.mark.parametrize("method", ALL_METHODS)
def test_unchanged_after_a_call_that_raised(bert, method):
    model, tokenizer = bert
    model.train()
    before = snapshot(model, tokenizer)
    with pytest.raises(IndexError):
        method(model, tokenizer, progress=False)("the movie was great", targets=7)
    with pytest.raises(ValueError):
        method(model, tokenizer, progress=False)(["fine", ""])
    assert_unchanged(before, snapshot(model, tokenizer))
    model.eval()


@pytest.mark.parametrize("method", ALL_METHODS)
def test_layer_attribution_leaves_no_hook(bert, llama, method):
    """With `split_point`, the hooks that read and replace the layer's output are gone after every call."""
    for model, tokenizer, args in (
        (*bert, ("the movie was great",)),
        (*llama, ("the cat sat", " on the mat")),
    ):
        model.train()
        before = snapshot(model, tokenizer)
        explainer = _explainer(method, model, tokenizer)
        explainer.split_point = 1
        explainer(*args)
        with pytest.raises(IndexError):
            explainer(args[0], targets=7 if len(args) == 1 else [10**9])
        assert_unchanged(before, snapshot(model, tokenizer))
        model.eval()


def test_interrupted_midway_restores_mode(bert, monkeypatch):
    """An error raised inside the model call (after eval() was set) still restores train mode."""
    model, tokenizer = bert
    model.train()
    before = snapshot(model, tokenizer)
    explainer = Occlusion(model, tokenizer, progress=False)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(type(explainer), "attribute", broken)
    with pytest.raises(RuntimeError, match="boom"):
        explainer("the movie was great")
    assert_unchanged(before, snapshot(model, tokenizer))
    model.eval()
