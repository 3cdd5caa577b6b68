"""Generation: one tokenization, no stray BOS, LM head scores equal a plain forward, chats, generated targets."""

from __future__ import annotations

import pytest
import torch

from interpreto import IntegratedGradients, Occlusion, Saliency
from tests.tolerance import assert_close_to_scale, magnitude


def _plain_log_probs(model, ids: list[int], n_prompt: int) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    targets = torch.tensor(ids[n_prompt:])
    return logits[n_prompt - 1 : -1].log_softmax(-1)[torch.arange(len(targets)), targets]


@pytest.mark.parametrize("add_bos", [True, False])
def test_continuation_tokenized_without_special_tokens(add_bos):
    from interpreto.zoo.tiny import tiny_llama

    model, tokenizer = tiny_llama(seed=0, add_bos=add_bos)
    out = Saliency(model, tokenizer, granularity="all_tokens", progress=False)("the cat sat", " on the mat")[
        0
    ]
    expected = tokenizer(" on the mat", add_special_tokens=False)["input_ids"]
    assert out.targets == expected
    assert tokenizer.bos_token_id not in out.targets
    prompt_ids = tokenizer("the cat sat")["input_ids"]
    assert (prompt_ids[0] == tokenizer.bos_token_id) == add_bos
    # ALL_TOKENS shows exactly one BOS when the tokenizer adds one, none otherwise
    assert out.elements.count(tokenizer.bos_token) == int(add_bos)
    assert_close_to_scale(out.scores, _plain_log_probs(model, prompt_ids + expected, len(prompt_ids)))


def test_token_ids_as_targets_are_used_verbatim(llama):
    """Ids that would not survive decode/re-encode are explained as given."""
    model, tokenizer = llama
    ids = (
        tokenizer(" mat", add_special_tokens=False)["input_ids"]
        + tokenizer("at", add_special_tokens=False)["input_ids"]
    )
    out = Occlusion(model, tokenizer, progress=False)("the cat sat on the", ids)[0]
    assert out.targets == ids
    prompt_ids = tokenizer("the cat sat on the")["input_ids"]
    assert_close_to_scale(out.scores, _plain_log_probs(model, prompt_ids + ids, len(prompt_ids)))


def test_targets_none_explains_the_greedy_continuation(gpt2):
    model, tokenizer = gpt2
    prompt_ids = tokenizer("the cat sat")["input_ids"]
    with torch.no_grad():
        generated = model.generate(
            torch.tensor([prompt_ids]), max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )[0, len(prompt_ids) :].tolist()
    out = Occlusion(model, tokenizer, progress=False)("the cat sat", None, max_new_tokens=4)[0]
    assert out.targets == [t for t in generated if t != tokenizer.eos_token_id]
    assert out.target_names == [tokenizer.decode([t]) for t in out.targets]


def test_chat_prompt_uses_the_template_and_shows_only_message_text(llama):
    model, tokenizer = llama
    chat = [{"role": "user", "content": "the cat sat on the mat"}]
    out = Occlusion(model, tokenizer, progress=False)(chat, " the dog")[0]
    rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert out.text == rendered
    assert out.elements[: out.n_prompt_elements] == ["the", "cat", "sat", "on", "the", "mat"]
    prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(" the dog", add_special_tokens=False)["input_ids"]
    assert_close_to_scale(out.scores, _plain_log_probs(model, prompt_ids + target_ids, len(prompt_ids)))


def test_several_prompts_with_their_continuations(llama):
    model, tokenizer = llama
    outs = IntegratedGradients(model, tokenizer, n_perturbations=8, progress=False)(
        ["the cat sat", "a dog ran"], [" on the mat", " away"]
    )
    assert [o.target_names for o in outs] == [
        [tokenizer.decode([i]) for i in tokenizer(c, add_special_tokens=False)["input_ids"]]
        for c in [" on the mat", " away"]
    ]


def test_probability_score_option(gpt2):
    model, tokenizer = gpt2
    log_out = Occlusion(model, tokenizer, progress=False)("the cat sat", " on")[0]
    prob_out = Occlusion(model, tokenizer, score="probabilities", progress=False)("the cat sat", " on")[0]
    assert_close_to_scale(prob_out.scores, log_out.scores.exp())
    assert prob_out.score == "probabilities"


def test_contrastive_score_is_log_prob_difference(gpt2):
    model, tokenizer = gpt2
    prompt, target, contrast = "the cat sat on the", " mat", " cat"
    out = Occlusion(model, tokenizer, progress=False)(prompt, target, contrast=contrast)[0]
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    contrast_ids = tokenizer(contrast, add_special_tokens=False)["input_ids"]
    assert len(target_ids) == len(contrast_ids) and out.contrasts == contrast_ids
    with torch.no_grad():
        log_probs = model(torch.tensor([prompt_ids + target_ids])).logits[0].log_softmax(-1)
    steps = torch.arange(len(prompt_ids) - 1, len(prompt_ids) + len(target_ids) - 1)
    expected = log_probs[steps, target_ids] - log_probs[steps, contrast_ids]
    scale = magnitude(log_probs[steps, target_ids], log_probs[steps, contrast_ids])  # the terms subtracted
    assert_close_to_scale(out.scores, expected, scale=scale)
    plain = Occlusion(model, tokenizer, progress=False)(prompt, target)[0]
    versus = Occlusion(model, tokenizer, progress=False)(prompt, contrast_ids)[0]
    # occlusion is linear in the score: at the first step (both runs feed the prompt only) contrastive
    # attributions are the difference of the two; later steps teacher-force the target, not the contrast
    n_prompt = out.n_prompt_elements
    assert_close_to_scale(
        out.attributions[0, :n_prompt],
        plain.attributions[0, :n_prompt] - versus.attributions[0, :n_prompt],
        scale=scale,
    )
    assert "vs" in out.to_html()


def test_contrast_must_align_with_the_target(gpt2):
    model, tokenizer = gpt2
    with pytest.raises(ValueError, match="contrast has .* tokens but the continuation has"):
        Occlusion(model, tokenizer, progress=False)("the cat", " sat on", contrast=[5])


def test_user_score_function(gpt2):
    model, tokenizer = gpt2

    def entropy_free_logit(logits, target_ids):
        return logits.gather(-1, target_ids.view(1, -1, 1).expand(logits.shape[0], -1, 1)).squeeze(-1) * 2

    doubled = Occlusion(model, tokenizer, score=entropy_free_logit, progress=False)("the cat", " sat")[0]
    logits = Occlusion(model, tokenizer, score="logits", progress=False)("the cat", " sat")[0]
    assert_close_to_scale(doubled.attributions, 2 * logits.attributions, equal_nan=True)
    assert doubled.score == "entropy_free_logit"
