"""Rows are cut into even chunks; gradient methods keep each backward pass within a memory budget."""

from __future__ import annotations

import pytest
import torch

import interpreto.attribution.gradient as gradient_module
from interpreto import IntegratedGradients, Saliency
from interpreto.attribution.gradient import target_gradients
from interpreto.model.memory import backward_bytes_per_token, rows_within_budget
from interpreto.model.running import row_batches
from tests.tolerance import assert_close_to_scale


def test_row_batches_are_even_and_cover_every_row():
    chunks = list(row_batches(50, 20, batch_size=43))
    assert [c.stop - c.start for c in chunks] == [25, 25]
    chunks = list(row_batches(130, 10, batch_size=64, max_batch_tokens=400))
    assert [c.stop - c.start for c in chunks] == [33, 33, 33, 31]
    assert chunks[0].start == 0 and chunks[-1].stop == 130


def test_activation_estimate_grows_with_length_and_fits_the_budget(bert):
    model, _ = bert
    assert backward_bytes_per_token(model, 64) > backward_bytes_per_token(model, 8) > 0
    per_row = backward_bytes_per_token(model, 20) * 20
    assert rows_within_budget(model, 20, torch.device("cpu"), 10 * per_row / 2**30) == 10
    assert rows_within_budget(model, 20, torch.device("cpu"), 1e-12) == 1


def test_memory_budget_chunks_the_path_without_changing_results(bert):
    model, tokenizer = bert
    text = "the plot was thin but the cast was great"
    calls = []
    handle = model.register_forward_hook(lambda module, args, kwargs_output: calls.append(1))
    try:
        whole = IntegratedGradients(model, tokenizer, n_perturbations=16, progress=False)(text, targets=1)[0]
        n_whole = len(calls)
        length = len(tokenizer(text).input_ids)
        budget = 4.5 * backward_bytes_per_token(model, length) * length / 2**30  # 4 rows per backward
        chunked = IntegratedGradients(
            model, tokenizer, n_perturbations=16, memory_budget=budget, progress=False
        )(text, targets=1)[0]
    finally:
        handle.remove()
    assert len(calls) - n_whole == n_whole + 3  # the 16 path points in 4 forwards instead of 1
    assert_close_to_scale(chunked.attributions, whole.attributions)


@pytest.mark.parametrize("budget", [0, -1.0, "1GB", True])
def test_bad_memory_budget_raises_naming_it(bert, budget):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="memory_budget must be"):
        IntegratedGradients(model, tokenizer, memory_budget=budget, progress=False)("a fine film")


class _NoVmap(torch.autograd.Function):
    """Identity whose backward reads a value (`.item()`): a vectorized backward through it raises."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * (1.0 if grad.abs().max().item() >= 0 else 0.0)


def test_target_gradients_batched_equal_one_backward_per_target():
    rows = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 6, dtype=torch.float64)
    for through in (lambda x: x, _NoVmap.apply):  # the second falls back to one backward per target

        def scores(through=through):
            return (through(rows).tanh() @ weights).sum(1)  # (3 rows, 6 targets), a fresh graph

        expected = torch.stack([torch.autograd.grad(scores()[:, t].sum(), rows)[0] for t in range(6)])
        batched = torch.stack(list(target_gradients(scores(), rows, batched=True)))
        looped = torch.stack(list(target_gradients(scores(), rows, batched=False)))
        torch.testing.assert_close(batched, expected)
        torch.testing.assert_close(looped, expected)


@pytest.mark.parametrize("method", [Saliency, IntegratedGradients])
def test_generation_gradients_batched_over_targets_equal_the_per_target_loop(llama, method, monkeypatch):
    model, tokenizer = llama
    prompt, continuation = "the cat sat on", " the mat today"
    calls = []
    original = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls.append(bool(kwargs.get("is_grads_batched")))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    explainer = method(
        model, tokenizer, progress=False, **({"n_perturbations": 8} if method is IntegratedGradients else {})
    )
    batched = explainer(prompt, continuation)[0]
    assert calls and all(calls)  # a small input: every backward pass batched over the targets
    calls.clear()
    monkeypatch.setattr(gradient_module, "BATCHED_TARGET_TOKENS", 0)
    looped = explainer(prompt, continuation)[0]
    assert len(calls) > 1 and not any(calls)
    assert_close_to_scale(batched.attributions, looped.attributions, equal_nan=True)
