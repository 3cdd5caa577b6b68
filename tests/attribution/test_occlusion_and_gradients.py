"""Occlusion equals real model differences; InputXGradient and Saliency equal hand autograd computations."""

from __future__ import annotations

import itertools

import pytest
import torch

import interpreto.model.masking as masking
from interpreto import Granularity, InputXGradient, IntegratedGradients, Occlusion, Saliency
from interpreto.model.tokens import replacement_token_id
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale, magnitude

TEXT = "the movie was unbelievable, really great!"


def _ids(tokenizer, text):
    return tokenizer(text, return_tensors="pt")["input_ids"]


def test_occlusion_equals_one_by_one_differences_word_level(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    out = Occlusion(model, tokenizer, granularity=Granularity.WORD, batch_size=3, progress=False)(
        TEXT, targets=[0, 2]
    )[0]
    ids = _ids(tokenizer, TEXT)
    words = tokenizer(TEXT).word_ids()
    assert out.elements == ["the", "movie", "was", "unbelievable", ",", "really", "great", "!"]
    with torch.no_grad():
        full = model(ids).logits[0]
        for element in range(len(out.elements)):
            occluded = ids.clone()
            positions = [p for p, w in enumerate(words) if w == element]
            occluded[0, positions] = tokenizer.mask_token_id
            expected = full - model(occluded).logits[0]
            # differences of logits: their round-off is a fraction of the logits, not of the differences
            assert_close_to_scale(out.attributions[:, element], expected[[0, 2]], scale=full)
    assert_close_to_scale(out.scores, full[[0, 2]])


def test_occlusion_generation_equals_one_by_one(gpt2):
    model, tokenizer = gpt2
    prompt, continuation = "the cat sat on the mat", " and the dog"
    out = Occlusion(model, tokenizer, granularity="token", progress=False)(prompt, continuation)[0]
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids])
    replacement = tokenizer(" ", add_special_tokens=False)["input_ids"][0]  # GPT-2: no mask token, a space

    def log_probs(input_ids):
        with torch.no_grad():
            logits = model(input_ids).logits[0, len(prompt_ids) - 1 : -1]
        return logits.log_softmax(-1)[torch.arange(len(target_ids)), target_ids]

    full = log_probs(ids)
    assert_close_to_scale(out.scores, full)
    n_prompt = len(prompt_ids)
    for position in range(len(prompt_ids) + len(target_ids) - 1):
        occluded = ids.clone()
        occluded[0, position] = replacement
        expected = full - log_probs(occluded)
        for j in range(len(target_ids)):
            value = out.attributions[j, position]
            if position < n_prompt + j:
                assert_close_to_scale(value, expected[j], scale=magnitude(full, expected), msg=(position, j))
            else:
                assert torch.isnan(value)


def test_input_x_gradient_equals_hand_autograd(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    out = InputXGradient(model, tokenizer, granularity="all_tokens", progress=False)(TEXT, targets=1)[0]
    ids = _ids(tokenizer, TEXT)
    embeddings = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    model(inputs_embeds=embeddings).logits[0, 1].backward()
    expected = (embeddings * embeddings.grad).sum(-1)[0]
    assert_close_to_scale(out.attributions[0], expected)
    word = InputXGradient(model, tokenizer, progress=False)(TEXT, targets=1)[0]
    # "unbelievable" is three tokens (positions 4, 5, 6): the word's score is their sum
    assert word.elements[3] == "unbelievable"
    assert_close_to_scale(word.attributions[0, 3], expected[4:7].sum(), scale=expected)


def test_saliency_equals_gradient_norm(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    out = Saliency(model, tokenizer, progress=False)(TEXT, targets=0)[0]
    ids = _ids(tokenizer, TEXT)
    embeddings = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    model(inputs_embeds=embeddings).logits[0, 0].backward()
    gradient = embeddings.grad[0]
    assert_close_to_scale(out.attributions[0, 3], gradient[4:7].norm())
    assert_close_to_scale(out.attributions[0, 0], gradient[1].norm())
    assert (out.attributions >= 0).all()


@pytest.mark.parametrize("method", [Saliency, InputXGradient, Occlusion])
def test_batch_size_does_not_change_results(bert, method):
    model, tokenizer = bert
    model = scaled_head(model)
    one = method(model, tokenizer, batch_size=1, progress=False)(TEXT)[0].attributions
    many = method(model, tokenizer, batch_size=64, progress=False)(TEXT)[0].attributions
    assert_close_to_scale(one, many)


@pytest.mark.parametrize("method", [InputXGradient, IntegratedGradients, Occlusion])
def test_signed_methods_show_evidence_against(planted, method):
    model, tokenizer = planted
    out = method(model, tokenizer, progress=False)("the awful movie", targets="positive")[0]
    assert out.elements[int(out.attributions[0].argmin())] == "awful"
    assert out.attributions[0, 1] < 0


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
@pytest.mark.parametrize("call_tokens", [0, 32, 10**9])
def test_generation_occlusion_reusing_the_prefix_cache_equals_full_forwards(
    model_name, call_tokens, request, monkeypatch
):
    """With batch_size=1 each row reuses the KV cache up to its first occluded token; with a memory cap the
    chunks change; rows grouped by shared prefix (one group per start, some, or one for all); the numbers must
    equal plain full forwards."""
    monkeypatch.setitem(masking.CALL_OVERHEAD_TOKENS, "cpu", call_tokens)
    model, tokenizer = request.getfixturevalue(model_name)
    prompt, continuation = "the cat sat on the mat and", " the dog ran"
    reused = Occlusion(model, tokenizer, granularity="token", batch_size=1, progress=False)(
        prompt, continuation
    )[0]
    capped = Occlusion(model, tokenizer, granularity="token", max_batch_tokens=40, progress=False)(
        prompt, continuation
    )[0]
    grouped = Occlusion(model, tokenizer, granularity="token", progress=False)(prompt, continuation)[0]
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids[:-1]])
    first_text = int(ids[0, 0] == tokenizer.bos_token_id) if tokenizer.bos_token_id is not None else 0
    with torch.no_grad():
        rows = ids.repeat(ids.shape[1] - first_text, 1)
        for row, position in enumerate(range(first_text, ids.shape[1])):
            rows[row, position] = replacement_token_id(tokenizer)
        steps = torch.arange(len(prompt_ids) - 1, ids.shape[1])
        full = model(ids).logits[0, steps].log_softmax(-1)[torch.arange(len(target_ids)), target_ids]
        occluded = model(rows).logits[:, steps].log_softmax(-1)[:, torch.arange(len(target_ids)), target_ids]
    expected = (full[None] - occluded).T  # (targets, fed positions); the last target token is never fed
    expected = torch.cat([expected, torch.full((len(target_ids), 1), float("nan"))], dim=1)
    finite = torch.isfinite(reused.attributions)
    # differences of log-probabilities: their round-off is a fraction of the log-probabilities
    scale = magnitude(full, occluded)
    assert_close_to_scale(reused.attributions[finite], expected[finite], scale=scale)
    assert_close_to_scale(capped.attributions, reused.attributions, scale=scale, equal_nan=True)
    assert_close_to_scale(grouped.attributions, reused.attributions, scale=scale, equal_nan=True)


def _grouping_cost(parts, starts, length: int, call_tokens: int) -> int:
    return sum(call_tokens + len(p) * max(length - int(starts[p].min()), 0) for p in parts)


def test_prefix_groups_minimize_the_call_cost():
    """Against every split of the sorted rows into contiguous groups (brute force)."""
    generator = torch.Generator().manual_seed(0)
    length = 8
    for call_tokens in (0, 3, 10, 1000):
        for _ in range(20):
            starts = torch.randint(0, length + 1, (7,), generator=generator)
            groups = masking.prefix_groups(starts, length, call_tokens)
            assert sorted(torch.cat(groups).tolist()) == list(range(7))
            ordered = torch.argsort(starts, stable=True)
            best = min(
                _grouping_cost(
                    [ordered[a:b] for a, b in zip((0, *cuts), (*cuts, 7), strict=True)],
                    starts,
                    length,
                    call_tokens,
                )
                for k in range(7)
                for cuts in itertools.combinations(range(1, 7), k)
            )
            assert _grouping_cost(groups, starts, length, call_tokens) == best
