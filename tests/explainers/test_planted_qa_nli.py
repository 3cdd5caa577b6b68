"""Planted-truth tests of the question answering, pairwise (NLI) and zero-shot explainers.

Same pattern as `test_planted_explainers.py`: a tiny BERT is trained once per module on a synthetic task whose
evidence is one known word, its held-out accuracy is asserted first, then the explainer's top attribution
must fall on the planted word.

- Question answering: the context is filler words with one color word and one food word; the question
  ("find the color" / "find the food") picks which one is the answer (start = end = that word's token).
- NLI: the premise is filler words with one topic word ("bread" for food, "song" for music, "rain" for
  weather); the hypothesis "this text is about {label}." is entailed when the label is the premise's topic,
  contradicted for another label, and neutral for premises without a topic word.

Everything runs on one thread (training and explanations): with two threads on a loaded two-core machine the
explanations of these tiny models get tens of times slower.
"""

from __future__ import annotations

import random

import pytest
import torch
from transformers import BertForQuestionAnswering, BertForSequenceClassification

from interpreto import IntegratedGradients, Occlusion
from interpreto.explainers import (
    PairwiseSequenceClassificationExplainer,
    QuestionAnsweringExplainer,
    ZeroShotClassificationExplainer,
)
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo.planted import FILLER_WORDS
from interpreto.zoo.tiny import seeded_model, tiny_bert_config
from tests.explainers.planted_training import _fillers, _top, _train

BATCH_SIZE = 32
N_EXPLAINED = 20
MIN_HIT_RATE = 0.9
METHODS = [Occlusion, IntegratedGradients]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- question answering: the answer is the context's word of the asked category -------------------------------

CATEGORIES = {
    "color": ("red", "yellow", "black", "white", "brown", "blue", "green"),
    "food": ("bread", "apple", "tea", "lunch", "dinner", "coffee"),
}
QA_FILLERS = tuple(word for word in FILLER_WORDS if not any(word in words for words in CATEGORIES.values()))


def _qa_context(rng: random.Random) -> list[str]:
    """Filler words with one word of each category inserted at random positions."""
    words = _fillers(rng, pool=QA_FILLERS)
    for category in sorted(CATEGORIES):
        words.insert(rng.randint(0, len(words)), rng.choice(CATEGORIES[category]))
    return words


def _question(category: str) -> str:
    return f"find the {category}"


def _answer_index(words: list[str], category: str) -> int:
    return next(i for i, word in enumerate(words) if word in CATEGORIES[category])


def _qa_sample(rng: random.Random) -> tuple[str, list[str], int]:
    """`(question, context words, word index of the answer)`."""
    words = _qa_context(rng)
    category = rng.choice(sorted(CATEGORIES))
    return _question(category), words, _answer_index(words, category)


def _qa_batch(tokenizer, samples):
    """The pair encoding of `samples` and the token position of each answer word (a single token)."""
    encoded = tokenizer(
        [question for question, _, _ in samples],
        [" ".join(words) for _, words, _ in samples],
        padding=True,
        return_tensors="pt",
    )
    positions = []
    for row, (_, _, answer) in enumerate(samples):
        sequence_ids, word_ids = encoded.sequence_ids(row), encoded.word_ids(row)
        positions.append(
            next(i for i, word in enumerate(word_ids) if sequence_ids[i] == 1 and word == answer)
        )
    return encoded, torch.tensor(positions)


@pytest.fixture(scope="module")
def qa_model():
    tokenizer = bert_wordpiece_tokenizer()
    assert all(len(tokenizer.tokenize(word)) == 1 for words in CATEGORIES.values() for word in words)
    model = seeded_model(BertForQuestionAnswering, tiny_bert_config(len(tokenizer)), seed=0)

    def loss(rng):
        encoded, positions = _qa_batch(tokenizer, [_qa_sample(rng) for _ in range(BATCH_SIZE)])
        return model(**encoded, start_positions=positions, end_positions=positions).loss

    return _train(model, loss, steps=300, lr=3e-3, seed=0), tokenizer


def test_qa_planted_answer_accuracy(qa_model):
    model, tokenizer = qa_model
    rng = random.Random(1_000)
    encoded, positions = _qa_batch(tokenizer, [_qa_sample(rng) for _ in range(500)])
    in_context = torch.tensor([[s == 1 for s in encoded.sequence_ids(row)] for row in range(len(positions))])
    with torch.inference_mode():
        outputs = model(**encoded)
    starts = outputs.start_logits.masked_fill(~in_context, float("-inf")).argmax(-1)
    ends = outputs.end_logits.masked_fill(~in_context, float("-inf")).argmax(-1)
    assert float(((starts == positions) & (ends == positions)).float().mean()) >= 0.99


# Integrated gradients (zero-embedding baseline) misses the answer word on a few contexts of this model (74/80
# starts and 75/80 ends over 40 contexts x 2 questions; 18/20 and 19/20 here): held to a lower bar than occlusion.
QA_MIN_HIT_RATES = {Occlusion: MIN_HIT_RATE, IntegratedGradients: 0.75}


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.__name__)
def test_qa_asked_word_is_predicted_answer_and_top_context_word_of_start_and_end(qa_model, method):
    model, tokenizer = qa_model
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=method, progress=False)
    rng = random.Random(2_000)
    answered = start_hits = end_hits = 0
    for _ in range(N_EXPLAINED // 2):
        words = _qa_context(rng)
        # the same context with both questions: the answer (and its top word) must follow the question
        for category in sorted(CATEGORIES):
            question, answer = _question(category), _answer_index(words, category)
            result = explainer(question, " ".join(words))
            n_question = len(question.split())
            assert [word for word, _ in result["start"]] == question.split() + words
            assert [word for word, _ in result["end"]] == question.split() + words
            answered += explainer.predicted_answer == words[answer]
            start_hits += _top(result["start"][n_question:]) == answer
            end_hits += _top(result["end"][n_question:]) == answer
    assert answered >= MIN_HIT_RATE * N_EXPLAINED
    assert start_hits >= QA_MIN_HIT_RATES[method] * N_EXPLAINED
    assert end_hits >= QA_MIN_HIT_RATES[method] * N_EXPLAINED


# --- NLI: "this text is about {label}." is entailed iff the premise holds the label's topic word ---------------

TOPICS = {"food": "bread", "music": "song", "weather": "rain"}
TOPIC_LABELS = sorted(TOPICS)
TEMPLATE = "this text is about {}."
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
NLI_FILLERS = tuple(word for word in FILLER_WORDS if word not in TOPICS.values())
NEUTRAL_RATE = 0.2


def _premise(rng: random.Random) -> tuple[list[str], str, int]:
    """`(premise words, topic label, word index of the topic word)`."""
    words = _fillers(rng, pool=NLI_FILLERS)
    topic = rng.choice(TOPIC_LABELS)
    index = rng.randint(0, len(words))
    words.insert(index, TOPICS[topic])
    return words, topic, index


def _nli_pair(rng: random.Random) -> tuple[list[str], str, int]:
    """`(premise words, hypothesis label, NLI class)`."""
    if rng.random() < NEUTRAL_RATE:
        return _fillers(rng, pool=NLI_FILLERS), rng.choice(TOPIC_LABELS), 1
    words, topic, _ = _premise(rng)
    if rng.random() < 0.5:
        return words, topic, 2
    return words, rng.choice([label for label in TOPIC_LABELS if label != topic]), 0


def _nli_encode(tokenizer, pairs):
    return tokenizer(
        [" ".join(words) for words, _, _ in pairs],
        [TEMPLATE.format(label) for _, label, _ in pairs],
        padding=True,
        return_tensors="pt",
    )


@pytest.fixture(scope="module")
def nli_model():
    tokenizer = bert_wordpiece_tokenizer()
    assert all(len(tokenizer.tokenize(word)) == 1 for word in [*TOPICS, *TOPICS.values()])
    config = tiny_bert_config(len(tokenizer), num_labels=3)
    config.id2label = dict(NLI_LABELS)
    config.label2id = {label: index for index, label in NLI_LABELS.items()}
    # with dropout, matching the premise's topic to the hypothesis' label stays at chance for 800 steps
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    model = seeded_model(BertForSequenceClassification, config, seed=0)

    def loss(rng):
        pairs = [_nli_pair(rng) for _ in range(BATCH_SIZE)]
        labels = torch.tensor([label for _, _, label in pairs])
        return model(**_nli_encode(tokenizer, pairs), labels=labels).loss

    return _train(model, loss, steps=450, lr=1e-3, seed=0), tokenizer


def test_nli_planted_pair_and_zero_shot_accuracy(nli_model):
    model, tokenizer = nli_model
    rng = random.Random(1_000)
    pairs = [_nli_pair(rng) for _ in range(600)]
    with torch.inference_mode():
        predictions = model(**_nli_encode(tokenizer, pairs)).logits.argmax(-1)
    assert float((predictions == torch.tensor([label for _, _, label in pairs])).float().mean()) >= 0.98
    # zero-shot: the topic's hypothesis has the highest entailment logit among all labels'
    premises = [_premise(rng) for _ in range(300)]
    every_label = [(words, label, 0) for words, _, _ in premises for label in TOPIC_LABELS]
    with torch.inference_mode():
        entailment = model(**_nli_encode(tokenizer, every_label)).logits[:, 2].view(len(premises), -1)
    topics = torch.tensor([TOPIC_LABELS.index(topic) for _, topic, _ in premises])
    assert float((entailment.argmax(-1) == topics).float().mean()) >= 0.98


# Integrated gradients (zero-embedding baseline) misses the answer word on a few contexts of this model (74/80
# starts and 75/80 ends over 40 contexts x 2 questions; 18/20 and 19/20 here): held to a lower bar than occlusion.
QA_MIN_HIT_RATES = {Occlusion: MIN_HIT_RATE, IntegratedGradients: 0.75}


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.__name__)
def test_zero_shot_predicts_topic_and_topic_word_is_top_word_of_its_entailment(nli_model, method):
    model, tokenizer = nli_model
    explainer = ZeroShotClassificationExplainer(model, tokenizer, method=method, progress=False)
    rng = random.Random(2_000)
    label_hits = word_hits = 0
    for _ in range(N_EXPLAINED):
        words, topic, index = _premise(rng)
        result = explainer(" ".join(words), TOPIC_LABELS, hypothesis_template=TEMPLATE)
        assert sorted(result) == TOPIC_LABELS
        assert all([word for word, _ in scores] == words for scores in result.values())
        assert explainer.predicted_class_name == "entailment"
        assert sum(explainer.pred_probs.values()) == pytest.approx(1.0)
        label_hits += explainer.predicted_label == topic
        word_hits += _top(result[explainer.predicted_label]) == index
    assert label_hits >= MIN_HIT_RATE * N_EXPLAINED
    assert word_hits >= MIN_HIT_RATE * N_EXPLAINED


# Integrated gradients (zero-embedding baseline) misses the answer word on a few contexts of this model (74/80
# starts and 75/80 ends over 40 contexts x 2 questions; 18/20 and 19/20 here): held to a lower bar than occlusion.
QA_MIN_HIT_RATES = {Occlusion: MIN_HIT_RATE, IntegratedGradients: 0.75}


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.__name__)
def test_pairwise_topic_word_is_top_premise_word_of_entailment_and_contradiction(nli_model, method):
    model, tokenizer = nli_model
    explainer = PairwiseSequenceClassificationExplainer(model, tokenizer, method=method, progress=False)
    rng = random.Random(2_000)
    hits = {"entailment": 0, "contradiction": 0}
    for _ in range(N_EXPLAINED):
        words, topic, index = _premise(rng)
        other = TOPIC_LABELS[(TOPIC_LABELS.index(topic) + 1) % len(TOPIC_LABELS)]
        for label, expected in ((topic, "entailment"), (other, "contradiction")):
            result = explainer(" ".join(words), TEMPLATE.format(label))
            assert [word for word, _ in result[: len(words)]] == words  # premise words, then hypothesis ones
            assert len(result) > len(words)
            hits[expected] += (
                explainer.predicted_class_name == expected and _top(result[: len(words)]) == index
            )
    assert hits["entailment"] >= MIN_HIT_RATE * N_EXPLAINED
    assert hits["contradiction"] >= MIN_HIT_RATE * N_EXPLAINED
