"""`ModelWithSplitPoints.generate`: plain generation unchanged, left padding right, edits equal a plain hook,
the steps `fn` sees, and the user's model left as it was (also after an error)."""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.model._tracing import first_tensor, replace_first
from interpreto.zoo import tiny_gpt2, tiny_llama
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale

PROMPTS = ["The dog", "A cat runs in the park", "Hello"]


def splitter_of(builder, split_points=1):
    model, tokenizer = builder()
    return ModelWithSplitPoints(model, split_points=split_points, tokenizer=tokenizer, progress=False)


def plain_generate(model, tokenizer, prompt, module=None, edit=None, **kwargs):
    """`model.generate` on one prompt (no padding), `edit` applied to `module`'s output by a plain hook."""
    enc = tokenizer(prompt, return_tensors="pt")
    handle = None
    if module is not None:
        handle = module.register_forward_hook(
            lambda _m, _a, output: replace_first(output, edit(first_tensor(output)))
        )
    try:
        ids = model.generate(**enc, do_sample=False, pad_token_id=tokenizer.eos_token_id, **kwargs)
    finally:
        if handle is not None:
            handle.remove()
    return ids[0, enc["input_ids"].shape[1] :]


@pytest.mark.parametrize("builder", [tiny_gpt2, tiny_llama])
def test_without_edit_equals_model_generate_prompt_by_prompt(builder):
    splitter = splitter_of(builder)
    ids = splitter.generate(PROMPTS, max_new_tokens=6)
    for row, prompt in zip(ids, PROMPTS, strict=True):
        assert torch.equal(row, plain_generate(splitter.model, splitter.tokenizer, prompt, max_new_tokens=6))


def test_without_edit_equals_model_generate_on_the_tokenizers_left_padded_batch():
    splitter = splitter_of(tiny_llama)  # left padding side, pad token
    enc = splitter.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    expected = splitter.model.generate(**enc, max_new_tokens=6, do_sample=False)[
        :, enc["input_ids"].shape[1] :
    ]
    assert torch.equal(splitter.generate(PROMPTS, max_new_tokens=6), expected)


@pytest.mark.parametrize("builder", [tiny_gpt2, tiny_llama])
def test_edit_equals_a_plain_hook_at_every_step(builder):
    splitter = splitter_of(builder)
    direction = torch.randn(32, generator=torch.Generator().manual_seed(1))

    def edit(hidden):
        return 0.5 * hidden + 3.0 * direction

    ids = splitter.generate(PROMPTS, fn=edit, max_new_tokens=6)
    module = splitter.model.get_submodule(splitter.split_points[0])
    unedited = splitter.generate(PROMPTS, max_new_tokens=6)
    assert not torch.equal(ids, unedited)
    for row, prompt in zip(ids, PROMPTS, strict=True):
        expected = plain_generate(splitter.model, splitter.tokenizer, prompt, module, edit, max_new_tokens=6)
        assert torch.equal(row, expected)


def test_fn_sees_the_prompt_pass_then_one_token_per_step():
    splitter = splitter_of(tiny_llama)
    width = max(len(splitter.tokenizer(p)["input_ids"]) for p in PROMPTS)
    shapes = []
    splitter.generate(PROMPTS, fn=lambda hidden: shapes.append(tuple(hidden.shape)), max_new_tokens=4)
    assert shapes == [(3, width, 32)] + [(3, 1, 32)] * 3
    shapes.clear()
    splitter.generate(
        PROMPTS, fn=lambda hidden: shapes.append(tuple(hidden.shape)), max_new_tokens=3, use_cache=False
    )
    assert shapes == [(3, width + t, 32) for t in range(3)]


def test_prompts_are_left_padded_as_documented():
    splitter = splitter_of(tiny_gpt2)  # no pad token: padding filled with EOS, masked out
    lengths = [len(splitter.tokenizer(p)["input_ids"]) for p in PROMPTS]
    width = max(lengths)
    seen = []
    splitter.generate(PROMPTS, fn=seen.append, max_new_tokens=1)
    for i, prompt in enumerate(PROMPTS):
        alone: list[torch.Tensor] = []
        splitter.generate(prompt, fn=alone.append, max_new_tokens=1)
        assert_close_to_scale(seen[0][i, width - lengths[i] :], alone[0][0])


def test_split_point_must_be_named_when_several():
    splitter = splitter_of(tiny_gpt2, split_points=[0, 1])
    with pytest.raises(ValueError, match="split_point: the model is split at"):
        splitter.generate("The dog", fn=lambda hidden: hidden, max_new_tokens=1)
    assert splitter.generate("The dog", split_point=0, max_new_tokens=2).shape == (1, 2)


def test_user_model_left_as_it_was_also_after_an_error():
    splitter = splitter_of(tiny_llama)
    model, tokenizer = splitter.model, splitter.tokenizer
    model.train()
    model.model.layers[1].eval()
    model.model.embed_tokens.weight.requires_grad_(False)
    model.generate(**tokenizer("The dog", return_tensors="pt"), max_new_tokens=1, do_sample=False)
    before = snapshot(model, tokenizer)
    splitter.generate(PROMPTS, fn=lambda hidden: hidden * 2, max_new_tokens=2)
    assert_unchanged(before, snapshot(model, tokenizer))

    def broken(hidden):
        raise RuntimeError("broken edit")

    with pytest.raises(RuntimeError, match="broken edit"):
        splitter.generate(PROMPTS, fn=broken, max_new_tokens=2)
    assert_unchanged(before, snapshot(model, tokenizer))
    assert model.training and not model.model.layers[1].training
