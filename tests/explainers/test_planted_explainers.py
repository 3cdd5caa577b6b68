"""Planted-truth tests: tiny BERTs trained in seconds on synthetic tasks whose evidence is one known word.

Each model is trained once per module (one thread, fixed seed, forked random state, so the weights depend
only on the code), its held-out accuracy is asserted first, then the explainer's top attribution must fall
on the planted word.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from transformers import BertForSequenceClassification, BertForTokenClassification

from interpreto import Occlusion
from interpreto.explainers import MultiLabelClassificationExplainer, TokenClassificationExplainer
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo.tiny import seeded_model, tiny_bert_config
from tests.explainers.planted_training import _fillers, _top, _train

MARKERS = ("great", "awful")
BATCH_SIZE = 32


# --- token classification: a token is MARK iff it is a marker word -------------------------------------------


def _token_sentence(rng: random.Random) -> list[str]:
    words = _fillers(rng)
    for _ in range(rng.randint(0, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice(MARKERS))
    return words


def _token_labels(tokenizer, encoded) -> torch.Tensor:
    marker_ids = set(tokenizer.convert_tokens_to_ids(list(MARKERS)))
    labels = torch.tensor(
        [[int(i) in marker_ids for i in row] for row in encoded["input_ids"].tolist()]
    ).long()
    labels[encoded["attention_mask"] == 0] = -100
    return labels


@pytest.fixture(scope="module")
def marker_tagger():
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=2)
    config.id2label = {0: "O", 1: "MARK"}
    config.label2id = {"O": 0, "MARK": 1}
    model = seeded_model(BertForTokenClassification, config, seed=0)

    def loss(rng):
        encoded = tokenizer(
            [" ".join(_token_sentence(rng)) for _ in range(BATCH_SIZE)], padding=True, return_tensors="pt"
        )
        return model(**encoded, labels=_token_labels(tokenizer, encoded)).loss

    return _train(model, loss, steps=150, lr=3e-3, seed=0), tokenizer


def test_token_planted_marker_accuracy(marker_tagger):
    model, tokenizer = marker_tagger
    rng = random.Random(1_000)
    texts = [" ".join(_token_sentence(rng)) for _ in range(500)]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    labels = _token_labels(tokenizer, encoded)
    with torch.inference_mode():
        predictions = model(**encoded).logits.argmax(-1)
    all_right = ((predictions == labels) | (labels == -100)).all(-1)
    assert float(all_right.float().mean()) >= 0.99


def test_token_planted_marker_is_top_word_of_its_own_label(marker_tagger):
    model, tokenizer = marker_tagger
    explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    rng = random.Random(2_000)
    n_explained = 0
    for _ in range(12):
        words = _token_sentence(rng)
        if not any(word in MARKERS for word in words):
            continue
        result = explainer(" ".join(words), ignored_labels=["O"])
        encoded = tokenizer(" ".join(words))
        marked = sorted(
            i for i, word in enumerate(encoded.word_ids()) if word is not None and words[word] in MARKERS
        )
        assert sorted(result) == marked  # exactly the markers are labelled MARK
        for position, explanation in result.items():
            scores = explanation["attribution_scores"]
            assert explanation["label"] == "MARK"
            assert [word for word, _ in scores] == words
            assert _top(scores) == encoded.word_ids()[position]  # the token's own word
            n_explained += 1
    assert n_explained >= 8


# --- multi-label: label GREAT iff "great" is present, AWFUL iff "awful" is -------------------------------------

MULTI_LABELS = {0: "GREAT", 1: "AWFUL"}


def _multilabel_sample(rng: random.Random) -> tuple[list[str], list[bool]]:
    words = _fillers(rng)
    present = [rng.random() < 0.5 for _ in MARKERS]
    for marker, on in zip(MARKERS, present, strict=True):
        if on:
            words.insert(rng.randint(0, len(words)), marker)
    return words, present


@pytest.fixture(scope="module")
def marker_multilabel():
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=2)
    config.id2label = dict(MULTI_LABELS)
    config.label2id = {label: index for index, label in MULTI_LABELS.items()}
    config.problem_type = "multi_label_classification"
    model = seeded_model(BertForSequenceClassification, config, seed=0)

    def loss(rng):
        samples = [_multilabel_sample(rng) for _ in range(BATCH_SIZE)]
        encoded = tokenizer([" ".join(words) for words, _ in samples], padding=True, return_tensors="pt")
        targets = torch.tensor([present for _, present in samples], dtype=torch.float32)
        return F.binary_cross_entropy_with_logits(model(**encoded).logits, targets)

    return _train(model, loss, steps=150, lr=3e-3, seed=0), tokenizer


def test_multilabel_planted_accuracy(marker_multilabel):
    model, tokenizer = marker_multilabel
    rng = random.Random(1_000)
    samples = [_multilabel_sample(rng) for _ in range(500)]
    encoded = tokenizer([" ".join(words) for words, _ in samples], padding=True, return_tensors="pt")
    with torch.inference_mode():
        predictions = model(**encoded).logits > 0
    expected = torch.tensor([present for _, present in samples])
    assert float((predictions == expected).all(-1).float().mean()) >= 0.99


def test_multilabel_planted_marker_is_top_word_of_its_label(marker_multilabel):
    model, tokenizer = marker_multilabel
    explainer = MultiLabelClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    rng = random.Random(2_000)
    n_checked = 0
    for _ in range(12):
        words, present = _multilabel_sample(rng)
        result = explainer(" ".join(words))
        assert explainer.predicted_labels == [MULTI_LABELS[i] for i, on in enumerate(present) if on]
        for index, (marker, on) in enumerate(zip(MARKERS, present, strict=True)):
            scores = result[MULTI_LABELS[index]]
            assert [word for word, _ in scores] == words
            if on:
                assert scores[_top(scores)][0] == marker
                n_checked += 1
    assert n_checked >= 8
