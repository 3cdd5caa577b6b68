"""Bad input gets an error that names the argument and the fix."""

from __future__ import annotations

import pytest
import torch
from transformers import BertModel

from interpreto import IntegratedGradients, Occlusion


def test_empty_text(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="inputs.*empty"):
        Occlusion(model, tokenizer, progress=False)("   ")
    with pytest.raises(ValueError, match="inputs is empty"):
        Occlusion(model, tokenizer, progress=False)([])


def test_unknown_label_lists_valid_ones(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match=r"unknown label 'happy'.*LABEL_0"):
        Occlusion(model, tokenizer, progress=False)("the movie", targets="happy")


def test_class_index_out_of_range(bert):
    model, tokenizer = bert
    with pytest.raises(IndexError, match=r"class index 3 is out of range.*3 classes"):
        Occlusion(model, tokenizer, progress=False)("the movie", targets=3)
    with pytest.raises(IndexError, match="out of range"):
        Occlusion(model, tokenizer, progress=False)("the movie", targets=-1)


def test_targets_length_must_match_inputs(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="one entry per input"):
        Occlusion(model, tokenizer, progress=False)(["a movie", "a film"], targets=[0, 1, 2])


def test_empty_continuation(gpt2):
    model, tokenizer = gpt2
    with pytest.raises(ValueError, match="continuation is empty"):
        Occlusion(model, tokenizer, progress=False)("the cat", "")
    with pytest.raises(ValueError, match="no token"):
        Occlusion(model, tokenizer, progress=False)("the cat", [])


def test_too_long_input_raises_unless_truncation(bert):
    model, tokenizer = bert
    text = " ".join(["movie"] * 300)
    with pytest.raises(ValueError, match="at most 128.*truncation=True"):
        Occlusion(model, tokenizer, progress=False)(text)
    out = IntegratedGradients(model, tokenizer, n_perturbations=4, truncation=True, progress=False)(text)[0]
    assert len(out.elements) == 126  # 128 positions minus [CLS] and [SEP]


def test_too_long_generation_truncates_prompt_from_the_left(llama):
    model, tokenizer = llama
    prompt = " ".join(["the cat"] * 200)
    with pytest.raises(ValueError, match="truncation=True"):
        Occlusion(model, tokenizer, progress=False)(prompt, " sat")
    out = Occlusion(model, tokenizer, truncation=True, granularity="token", progress=False)(prompt, " sat")[0]
    n_continuation = len(tokenizer(" sat", add_special_tokens=False)["input_ids"])
    # 128 fed positions: BOS (not an element), prompt tokens, continuation tokens but the last
    assert len(out.elements) == 128 - 1 + 1
    assert out.n_prompt_elements == 128 - n_continuation
    assert out.text.endswith("the cat")


def test_model_tokenizer_mismatch(bert, gpt2):
    model, _ = bert
    _, tokenizer = gpt2
    with pytest.raises(ValueError, match="tokenizer has .* tokens but the model embeds only"):
        Occlusion(model, tokenizer, progress=False)("the movie")


def test_wrong_types(bert):
    model, tokenizer = bert
    with pytest.raises(TypeError, match="inputs must be a string"):
        Occlusion(model, tokenizer, progress=False)(42)
    with pytest.raises(TypeError, match="model must be a Hugging Face PreTrainedModel"):
        Occlusion(torch.nn.Linear(2, 2), tokenizer, progress=False)("the movie")
    with pytest.raises(TypeError, match="targets: expected a class index or a label name"):
        Occlusion(model, tokenizer, progress=False)("the movie", targets=1.5)
    with pytest.raises(ValueError, match="granularity='paragraph' is unknown"):
        Occlusion(model, tokenizer, granularity="paragraph", progress=False)("the movie")
    with pytest.raises(ValueError, match="n_perturbations must be a positive integer"):
        IntegratedGradients(model, tokenizer, n_perturbations=0, progress=False)("the movie")
    with pytest.raises(ValueError, match="score='margin' is unknown"):
        Occlusion(model, tokenizer, score="margin", progress=False)("the movie")


def test_unsupported_model_kind_names_supported_ones(bert):
    model, tokenizer = bert
    encoder = BertModel(model.config)
    with pytest.raises(TypeError, match=r"ForSequenceClassification.*ForCausalLM"):
        Occlusion(encoder, tokenizer, progress=False)("the movie")


def test_slow_tokenizer_rejected(bert):
    model, tokenizer = bert

    class Slow:
        is_fast = False

    with pytest.raises(TypeError, match="fast tokenizer"):
        Occlusion(model, Slow(), progress=False)("the movie")
