"""The copy-task LM: prompts, tokenizer, greedy accuracy, planted behaviour under removal, occlusion finds the
source."""

from __future__ import annotations

import json
import string

import pytest
import torch

from interpreto.attribution.occlusion import Occlusion
from interpreto.zoo._cache import cache_dir
from interpreto.zoo.copy_lm import (
    COPY_WORD,
    MAX_FILLER_WORDS,
    MIN_FILLER_WORDS,
    copy_accuracy,
    copy_lm_tokenizer,
    copy_task_lm,
    copy_task_prompts,
)


@pytest.fixture(scope="module")
def copy_lm():
    return copy_task_lm(seed=0)


def test_prompts_hold_one_capital_source_then_copy():
    prompts = copy_task_prompts(300, seed=5)
    assert prompts == copy_task_prompts(300, seed=5)
    assert prompts != copy_task_prompts(300, seed=6)
    positions = set()
    for prompt, continuation, source in prompts:
        words = prompt.split()
        assert words[-1] == COPY_WORD
        assert continuation == " " + words[source]
        assert [w for w in words[:-1] if w in string.ascii_uppercase] == [words[source]]
        fillers = words[:source] + words[source + 1 : -1]
        assert MIN_FILLER_WORDS <= len(fillers) <= MAX_FILLER_WORDS
        assert set(fillers) <= set(string.ascii_lowercase)
        positions.add(source)
    assert positions == set(range(MAX_FILLER_WORDS + 1))  # the source appears at every position


def test_tokenizer_gives_one_token_per_word_after_one_bos():
    tokenizer = copy_lm_tokenizer()
    encoding = tokenizer("k d R copy", return_offsets_mapping=True)
    assert tokenizer.convert_ids_to_tokens(encoding["input_ids"]) == ["<s>", "k", "d", "R", "copy"]
    assert encoding["offset_mapping"] == [(0, 0), (0, 1), (2, 3), (4, 5), (6, 10)]
    assert tokenizer(" R", add_special_tokens=False)["input_ids"] == [tokenizer.convert_tokens_to_ids("R")]
    assert tokenizer.mask_token == "<mask>" and tokenizer.pad_token == "<pad>"
    assert len(tokenizer) == 5 + 26 + 26 + 1


def test_greedy_continuation_is_the_source_on_held_out_prompts(copy_lm):
    model, tokenizer = copy_lm
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert copy_accuracy(model, tokenizer, copy_task_prompts(300, seed=2024)) >= 0.99
    for prompt, continuation, _ in copy_task_prompts(5, seed=99):
        inputs = tokenizer(prompt, return_tensors="pt")
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)[
            0, inputs["input_ids"].shape[1] :
        ]
        assert generated.tolist() == [
            tokenizer.convert_tokens_to_ids(continuation.strip()),
            tokenizer.eos_token_id,
        ]
    metrics = json.loads((cache_dir() / "copy-lm-v1" / "seed-0" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.99
    assert metrics["seconds"] < 60


def test_only_the_source_carries_the_answer(copy_lm):
    """Half the other words removed: the answer keeps most of its probability; the source removed: the 26
    capitals are about equally likely (the model was trained for both)."""
    model, tokenizer = copy_lm
    generator = torch.Generator().manual_seed(0)
    capitals = tokenizer.convert_tokens_to_ids(list(string.ascii_uppercase))
    for prompt, continuation, source in copy_task_prompts(30, seed=31):
        ids = torch.tensor(tokenizer(prompt)["input_ids"])
        others = torch.rand(len(ids), generator=generator) < 0.5
        others[[0, source + 1]] = False  # keep BOS and the source
        without_others = ids.masked_fill(others, tokenizer.mask_token_id)
        without_source = ids.clone()
        without_source[source + 1] = tokenizer.mask_token_id
        with torch.no_grad():
            probabilities = model(torch.stack([without_others, without_source])).logits[:, -1].softmax(-1)
        answer = tokenizer.convert_tokens_to_ids(continuation.strip())
        assert probabilities[0, answer] > 0.8
        assert probabilities[1, capitals].sum() > 0.95
        assert probabilities[1, capitals].max() < 0.15


def test_occlusion_top_score_is_the_source(copy_lm):
    """At least 95% of 20 held-out prompts (measured: 100 of 100)."""
    model, tokenizer = copy_lm
    rows = copy_task_prompts(20, seed=4242)
    outputs = Occlusion(model, tokenizer, progress=False)([p for p, _, _ in rows], [c for _, c, _ in rows])
    hits = 0
    for out, (prompt, _, source) in zip(outputs, rows, strict=True):
        assert out.elements[: out.n_prompt_elements] == prompt.split()
        hits += int(out.attributions[0, : out.n_prompt_elements].argmax()) == source
    assert hits >= 19
