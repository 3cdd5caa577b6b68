"""The default replacement token of causal LMs is neutral: no method or metric inserts an end token by default."""

from __future__ import annotations

import copy

import pytest
import torch

from interpreto import IntegratedGradients, KernelShap, Lime, Occlusion, Sobol
from interpreto.evaluation import AOPC, Comprehensiveness, Deletion, Infidelity, Insertion, Sufficiency
from interpreto.model.task import make_task
from interpreto.model.tokens import replacement_token_id
from interpreto.zoo.tiny import tiny_gpt2, tiny_llama

PROMPT, CONTINUATION = "the cat sat on the mat and", " the dog ran"
PERTURBATION_METHODS = [Occlusion, Lime, KernelShap, Sobol]
METRICS = [Deletion, Insertion, Comprehensiveness, Sufficiency, AOPC, Infidelity]


def _pad_as_end_of_turn(model_and_tokenizer):
    """A SmolLM2-like tokenizer: no mask token, and the pad token is the end-of-turn/end-of-sequence token."""
    model, tokenizer = model_and_tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    return model, tokenizer


LMS = {
    "llama_pad_is_end_of_turn": lambda: _pad_as_end_of_turn(tiny_llama(seed=0, add_bos=True)),
    "gpt2_unk_is_eos": lambda: tiny_gpt2(seed=0),  # GPT-2: unknown = pad-less = <|endoftext|>
}


def _end_ids(tokenizer) -> set[int]:
    """End-of-sequence and end-of-turn ids."""
    ids = {tokenizer.eos_token_id}
    if "<|im_end|>" in tokenizer.get_vocab():
        ids.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return ids


class FedIds:
    """Collects every `input_ids` the model is called with."""

    def __init__(self, model):
        self.rows: list[torch.Tensor] = []
        self.handle = model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.rows.append(ids.detach().cpu())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("lm", LMS)
def test_default_replacement_of_a_causal_lm_is_a_space_never_an_end_token(lm):
    model, tokenizer = LMS[lm]()
    replacement = replacement_token_id(tokenizer)
    assert replacement not in _end_ids(tokenizer)
    assert tokenizer.decode([replacement]) == " "


@pytest.mark.parametrize("lm", LMS)
@pytest.mark.parametrize("method", PERTURBATION_METHODS)
def test_perturbation_methods_never_feed_an_end_token_by_default(lm, method):
    model, tokenizer = LMS[lm]()
    ends = _end_ids(tokenizer)
    with FedIds(model) as fed:
        out = method(model, tokenizer, progress=False)(PROMPT, CONTINUATION)[0]
    assert fed.rows and torch.isfinite(out.attributions[0]).any()
    for ids in fed.rows:
        assert not any(int(i) in ends for i in ids.flatten()), tokenizer.convert_ids_to_tokens(ids[0])


@pytest.mark.parametrize("lm", LMS)
def test_metrics_and_ig_baseline_never_use_an_end_token_by_default(lm):
    model, tokenizer = LMS[lm]()
    ends = _end_ids(tokenizer)
    explanations = Occlusion(model, tokenizer, progress=False)(PROMPT, CONTINUATION)
    for metric in METRICS:
        with FedIds(model) as fed:
            metric(model, tokenizer, progress=False).evaluate(explanations)
        assert fed.rows, metric.__name__
        for ids in fed.rows:
            assert not any(int(i) in ends for i in ids.flatten()), metric.__name__
    explainer = IntegratedGradients(model, tokenizer, n_perturbations=8, progress=False)
    task = make_task(model, tokenizer)
    sample = task.prepare(PROMPT, CONTINUATION, explainer._granularity())[0]
    baseline = explainer.baseline_ids(task, sample)
    assert not any(int(i) in ends for i in baseline)
    assert (baseline[sample.maskable] == replacement_token_id(tokenizer)).all()


def test_replace_token_id_still_overrides_the_default(llama):
    model, tokenizer = llama
    with FedIds(model) as fed:
        Occlusion(model, tokenizer, progress=False, replace_token_id=tokenizer.eos_token_id)(
            PROMPT, CONTINUATION
        )
    assert any(int(tokenizer.eos_token_id) in ids.flatten().tolist() for ids in fed.rows)


@pytest.mark.slow
def test_smollm2_occlusion_ranks_the_country_first_for_its_capital():
    from interpreto.zoo import smollm2

    model, tokenizer = smollm2()
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # <|im_end|>: the default must not use it
    for prompt, capital, country in [
        ("The capital of France is", " Paris", "France"),
        ("The capital of Italy is", " Rome", "Italy"),
    ]:
        out = Occlusion(model, tokenizer, progress=False)(prompt, capital)[0]
        scores = out.attributions[0, : out.n_prompt_elements]
        assert out.elements[int(scores.argmax())] == country, dict(
            zip(out.elements, scores.tolist(), strict=False)
        )
