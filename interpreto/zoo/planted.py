"""A tiny BERT trained on synthetic sentences whose label is decided by one known word.

Each sentence is 6 to 12 neutral filler words with exactly one marker word inserted at a random
position: ``"great"`` makes it positive (label 1), ``"awful"`` negative (label 0). The marker is
the only evidence for the label, so a faithful attribution method must put its largest score on
the marker word. ``planted_sentences`` returns the marker's word index with each sentence.

Training also shows sentences with the marker removed, with target probabilities (0.5, 0.5).
Without them the model learns a default ("positive unless awful"), so that one of the markers
carries no evidence. With them (seeds 0 to 3, 200 fresh sentences each), the top word is the
marker for every sentence with occlusion ([MASK] replacement) and integrated gradients (zero
embedding baseline), and for at least 99% with the gradient norm. Input x gradient on word
embeddings is no test of faithfulness here (72% to 97% depending on the seed): BERT applies
LayerNorm to the sum of word, position and token-type embeddings, so
``grad . word_embedding == -grad . (position + token_type embeddings)``.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch
from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

from interpreto.zoo._cache import build_once
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo._training import classification_accuracy, fine_tune_classifier, torch_threads
from interpreto.zoo.tiny import seeded_model, tiny_bert_config

FILLER_WORDS = (
    "the", "a", "this", "that", "my", "our", "their", "some", "cat", "dog", "bird", "house", "room",
    "door", "window", "table", "chair", "car", "train", "road", "city", "river", "tree", "garden",
    "book", "letter", "song", "phone", "picture", "water", "coffee", "morning", "evening", "week",
    "is", "was", "has", "in", "on", "near", "with", "and", "then", "walk", "see", "open", "read",
    "blue", "green", "old", "new", "two", "three",
)  # fmt: skip
"""Neutral words the planted sentences are made of, each a single token of the tiny BERT vocabulary."""
MARKER_WORDS = {"awful": 0, "great": 1}
"""The marker words and the label each one decides (0 is ``"negative"``, 1 is ``"positive"``)."""
MIN_FILLER_WORDS, MAX_FILLER_WORDS = 6, 12
MIN_ACCURACY = 0.98

_CACHE_NAME = "planted-marker-v2"
_N_TRAIN, _N_UNMARKED, _N_TEST = 2000, 1000, 1000
# Sentences of each set come from their own random stream.
_UNMARKED_SEED_OFFSET, _TEST_SEED_OFFSET = 500_000, 1_000_000
# lr 3e-4 x 4 epochs keeps the tanh pooler out of saturation: with it InputXGradient also finds the marker
# (60/60 sentences for seed 0; lr 1e-3 x 2 epochs, also 100% accurate, found it in 33/40)
_TRAINING = {"n_epochs": 4, "batch_size": 32, "learning_rate": 3e-4, "max_length": 32}


def planted_sentences(n: int, seed: int = 0) -> list[tuple[str, int, int]]:
    """Return ``n`` synthetic sentences with their label and the word index of their marker.

    Args:
        n: Number of sentences.
        seed: Seed of the sentence generator; the same seed gives the same sentences.

    Returns:
        ``(text, label, marker_word_index)`` triples: ``text`` is lowercase words joined by single
        spaces, ``label`` is 1 if the marker is ``"great"`` and 0 if it is ``"awful"``, and
        ``text.split()[marker_word_index]`` is the marker.

    Examples:
        >>> text, label, marker_index = planted_sentences(1, seed=3)[0]
        >>> text.split()[marker_index] == ("great" if label == 1 else "awful")
        True
    """
    rng = random.Random(seed)
    markers = sorted(MARKER_WORDS)
    sentences = []
    for _ in range(n):
        words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(MIN_FILLER_WORDS, MAX_FILLER_WORDS))]
        marker = rng.choice(markers)
        marker_word_index = rng.randint(0, len(words))
        words.insert(marker_word_index, marker)
        sentences.append((" ".join(words), MARKER_WORDS[marker], marker_word_index))
    return sentences


def _training_set(seed: int) -> tuple[list[str], torch.Tensor]:
    """Return marked sentences with one-hot targets, then the same kind with the marker removed and (0.5, 0.5)."""
    marked = planted_sentences(_N_TRAIN, seed=seed)
    unmarked = planted_sentences(_N_UNMARKED, seed=seed + _UNMARKED_SEED_OFFSET)
    texts = [text for text, _, _ in marked]
    texts += [" ".join(w for i, w in enumerate(text.split()) if i != index) for text, _, index in unmarked]
    targets = torch.zeros(len(texts), len(MARKER_WORDS))
    targets[torch.arange(_N_TRAIN), [label for _, label, _ in marked]] = 1.0
    targets[_N_TRAIN:] = 1.0 / len(MARKER_WORDS)
    return texts, targets


def _build_planted_classifier(folder: Path, seed: int) -> None:
    """Train the planted-marker BERT and write it, its tokenizer and ``metrics.json`` into ``folder``."""
    started = time.perf_counter()
    tokenizer = bert_wordpiece_tokenizer()
    model = seeded_model(BertForSequenceClassification, tiny_bert_config(len(tokenizer)), seed)
    train_texts, train_targets = _training_set(seed)
    test_texts, test_labels, _ = zip(*planted_sentences(_N_TEST, seed=seed + _TEST_SEED_OFFSET), strict=True)
    # One thread: the weights then do not depend on the machine's core count, and a model this small
    # trains in ~3 s, against up to a minute with 2 threads on 2 busy cores (threads wait on each other).
    with torch_threads(1):
        fine_tune_classifier(model, tokenizer, train_texts, train_targets, seed=seed, **_TRAINING)
        accuracy = classification_accuracy(
            model, tokenizer, test_texts, test_labels, max_length=_TRAINING["max_length"]
        )
    if accuracy < MIN_ACCURACY:
        raise RuntimeError(
            f"The planted-marker classifier reached {accuracy:.3f} held-out accuracy with seed {seed}, "
            f"below {MIN_ACCURACY}; try another seed."
        )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    metrics = {
        "accuracy": accuracy,
        "n_train": _N_TRAIN,
        "n_train_unmarked": _N_UNMARKED,
        "n_test": _N_TEST,
        "seconds": round(time.perf_counter() - started, 2),
        "seed": seed,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))


def planted_classifier(seed: int = 0) -> tuple[BertForSequenceClassification, PreTrainedTokenizerFast]:
    """Return a tiny BERT whose label is decided by one planted marker word, and its tokenizer.

    Trained on first call on 2,000 `planted_sentences()` and 1,000 sentences without marker
    (target (0.5, 0.5)), 4 epochs, about 6 s on one CPU thread, then loaded from
    ``cache_dir() / "planted-marker-v2" / f"seed-{seed}"`` (0.1 s). The build fails unless the
    held-out accuracy reaches 98% (100% with seeds 0 to 3); ``metrics.json`` in the folder records
    it. Architecture and tokenizer are those of `tiny_bert_classifier()`.

    Args:
        seed: Seed of the initialization, the training sentences and the batch order.

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU, with labels
        ``{0: "negative", 1: "positive"}``.

    Examples:
        >>> model, tokenizer = planted_classifier()
        >>> text, label, marker_index = planted_sentences(1, seed=7)[0]
        >>> int(model(**tokenizer(text, return_tensors="pt")).logits.argmax()) == label
        True
    """
    folder = build_once(
        f"{_CACHE_NAME}/seed-{seed}", lambda staging: _build_planted_classifier(staging, seed)
    )
    model = BertForSequenceClassification.from_pretrained(folder).eval()
    return model, PreTrainedTokenizerFast.from_pretrained(folder)
