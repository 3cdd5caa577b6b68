"""Logit lens of concepts: equal to `head(norm(direction))` computed by hand (RMSNorm for Llama, LayerNorm for
GPT-2), display texts without tokenizer marks, clear errors, and the model left unchanged."""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import ConceptExplainer, NeuronsAsConcepts, NotFittedError
from interpreto.concepts.interpret import LogitLens, logit_lens
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale


class DictionaryConcepts(ConceptExplainer):
    """A fitted explainer with a given dictionary `(nb_concepts, hidden)`."""

    def __init__(self, model_with_split_points, dictionary: torch.Tensor):
        super().__init__(model_with_split_points, dictionary.shape[0])
        self.directions = dictionary
        self.is_fitted, self.input_dim = True, dictionary.shape[1]

    def _encode(self, rows):
        return rows @ self.directions.T

    def _dictionary(self):
        return self.directions


def explainer_for(model, tokenizer, n_concepts: int = 6, dim: int = 32, seed: int = 0) -> DictionaryConcepts:
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    dictionary = torch.randn(n_concepts, dim, generator=torch.Generator().manual_seed(seed))
    return DictionaryConcepts(splitter, dictionary)


def rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def layer_norm(x, weight, bias, eps):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + eps) * weight + bias


def expected_text(tokenizer, token_id: int) -> str:
    token = tokenizer.convert_ids_to_tokens(token_id)
    return token if token_id in tokenizer.all_special_ids else tokenizer.convert_tokens_to_string([token])


def check_against(lens: dict[int, LogitLens], logits: torch.Tensor, tokenizer, k: int) -> None:
    for concept, row in enumerate(logits):
        top, bottom = torch.topk(row, k), torch.topk(row, k, largest=False)
        assert_close_to_scale([v for _, v in lens[concept].top], top.values, scale=row)
        assert_close_to_scale([v for _, v in lens[concept].bottom], bottom.values, scale=row)
        for (text, _), token_id in zip(
            lens[concept].top + lens[concept].bottom,
            top.indices.tolist() + bottom.indices.tolist(),
            strict=True,
        ):
            reference = expected_text(tokenizer, token_id)
            if "\ufffd" not in reference:  # partial UTF-8 bytes are shown escaped instead
                assert text == reference
            assert "Ġ" not in text and "Ċ" not in text


def test_llama_equals_rmsnorm_then_head(llama):
    model, tokenizer = llama
    explainer = explainer_for(model, tokenizer)
    lens = logit_lens(explainer, k=7)
    weight, eps = model.model.norm.weight.detach(), model.config.rms_norm_eps
    logits = rms_norm(explainer.dictionary, weight, eps) @ model.lm_head.weight.detach().T
    check_against(lens, logits[:, : len(tokenizer)], tokenizer, k=7)
    assert sorted(lens) == list(range(6))


def test_gpt2_equals_layernorm_then_head_and_without_norm(gpt2):
    model, tokenizer = gpt2
    explainer = explainer_for(model, tokenizer, seed=1)
    ln = model.transformer.ln_f
    normed = layer_norm(explainer.dictionary, ln.weight.detach(), ln.bias.detach(), ln.eps)
    head = model.lm_head.weight.detach()
    check_against(logit_lens(explainer, k=5), normed @ head.T, tokenizer, k=5)
    raw = logit_lens(explainer, k=5, concepts=[4, 1], final_norm=None)
    assert sorted(raw) == [1, 4]
    logits = explainer.dictionary @ head.T
    assert_close_to_scale([v for _, v in raw[4].top], torch.topk(logits[4], 5).values, scale=logits[4])
    by_path = logit_lens(explainer, k=5, concepts=2, final_norm="transformer.ln_f")
    assert by_path[2] == logit_lens(explainer, k=5, concepts=2)[2]


def test_neurons_lens_reads_the_head_columns(gpt2):
    # with the identity dictionary and no norm, concept c's logits are column c of the head
    model, tokenizer = gpt2
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog ran."]))
    lens = logit_lens(neurons, k=3, concepts=[0, 9], final_norm=None)
    column = model.lm_head.weight.detach()[:, 9]
    assert_close_to_scale([v for _, v in lens[9].top], torch.topk(column, 3).values, scale=column)
    assert lens[9].to_dict()["top"][0] == list(lens[9].top[0])


def test_errors(bert, gpt2):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="logit lens needs a causal LM"):
        logit_lens(explainer_for(model, tokenizer))
    model, tokenizer = gpt2
    with pytest.raises(ValueError, match="residual stream"):
        logit_lens(explainer_for(model, tokenizer, dim=16))
    with pytest.raises(ValueError, match=r"concepts.*\[0, 6\)"):
        logit_lens(explainer_for(model, tokenizer), concepts=[6])
    with pytest.raises(ValueError, match="final_norm"):
        logit_lens(explainer_for(model, tokenizer), final_norm="transformer.nope")
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    with pytest.raises(NotFittedError):
        logit_lens(NeuronsAsConcepts(splitter))
    with pytest.raises(ValueError, match="model_with_split_points"):
        logit_lens(DictionaryConcepts(None, torch.eye(2)))


def test_model_is_left_unchanged(llama):
    model, tokenizer = llama
    explainer = explainer_for(model, tokenizer)
    model.model.norm.train()
    before = snapshot(model, tokenizer)
    try:
        logit_lens(explainer, k=3)
        assert_unchanged(before, snapshot(model, tokenizer))
    finally:
        model.eval()
