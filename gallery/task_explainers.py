"""Gallery: every task explainer of `interpreto.explainers` finds the word (or the image tile) planted as the evidence.

Each explainer runs on a tiny model whose decision depends on one known input element, so there is a right answer
to check the explanation against:

- `SequenceClassificationExplainer`: the zoo's `planted_classifier()` (a tiny BERT: "great" makes a sentence
  positive, "awful" negative, the other words are neutral filler);
- `QuestionAnsweringExplainer`: a tiny BERT trained here to answer "find the color" / "find the food" with the
  context's one color word / one food word;
- `TokenClassificationExplainer`: a tiny BERT tagger trained here to label "great" and "awful" MARK, every other
  token O;
- `ZeroShotClassificationExplainer` and `PairwiseSequenceClassificationExplainer`: a tiny NLI BERT trained here:
  "this text is about {food, music, weather}." is entailed when the premise holds "bread", "song" or "rain";
- `MultiLabelClassificationExplainer`: a tiny BERT trained here with label GREAT iff "great" is in the text and
  AWFUL iff "awful" is;
- `ImageClassificationExplainer`: a tiny ViT (16 x 16 pixels, 4 x 4 patches) trained here to name the colour (red,
  green, blue) of the one coloured tile of a grey-noise image.

The text models are the recipes of `tests/explainers/test_planted_explainers.py` and `test_planted_qa_nli.py`
(architecture and tokenizer of `interpreto.zoo.tiny`, trained on one thread with fixed seeds, a few seconds
each). For each explainer the script checks the model's held-out accuracy, explains `--n-explained` fresh inputs
with `Occlusion` and with `IntegratedGradients`, counts how often the top element is the planted one, and asserts
the defining properties (occlusion = the model's own difference, IG completeness within 1% of f(x) - f(b), HTML
escaping). Writes `docs/gallery/task-explainers.md`, its JSON, a PNG with one panel per explainer, and each
explainer's `visualize()` output under `docs/gallery/task-explainers/`.

Run with `OMP_NUM_THREADS=1 python gallery/task_explainers.py`: measured 48 to 72 s by its own timer (about 56 s of
CPU time; 59 to 83 s wall with the imports, on a 2-core machine shared with other jobs).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from transformers import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)
from transformers.utils import logging as hf_logging

from interpreto import IntegratedGradients, Occlusion
from interpreto.explainers import (
    ImageClassificationExplainer,
    MultiLabelClassificationExplainer,
    PairwiseSequenceClassificationExplainer,
    QuestionAnsweringExplainer,
    SequenceClassificationExplainer,
    TokenClassificationExplainer,
    ZeroShotClassificationExplainer,
)
from interpreto.zoo import FILLER_WORDS, planted_classifier, planted_sentences
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo.tiny import seeded_model, tiny_bert_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import DOCS_GALLERY, provenance, write_page  # noqa: E402

PAGE = "task-explainers"
METHODS = {"Occlusion": Occlusion, "IG": IntegratedGradients}
# Integrated gradients' path points: with 50 (the default) the quadrature leaves up to 18% of f(x) - f(baseline)
# unexplained on these trained tiny BERTs (100: 1.1%, 200: 0.09%, measured on the NLI model; the page prints it)
IG_STEPS = 200
BATCH_SIZE = 32
MARKERS = ("great", "awful")
CATEGORIES = {
    "color": ("red", "yellow", "black", "white", "brown", "blue", "green"),
    "food": ("bread", "apple", "tea", "lunch", "dinner", "coffee"),
}
QA_FILLERS = tuple(w for w in FILLER_WORDS if not any(w in words for words in CATEGORIES.values()))
TOPICS = {"food": "bread", "music": "song", "weather": "rain"}
TOPIC_LABELS = sorted(TOPICS)
TEMPLATE = "this text is about {}."
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
NLI_FILLERS = tuple(word for word in FILLER_WORDS if word not in TOPICS.values())
MULTI_LABELS = {0: "GREAT", 1: "AWFUL"}
COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
IMAGE, PATCH = 16, 4
# 50 Gauss-Legendre points leave up to 2.5% of f(x) - f(baseline) unexplained on this trained ViT; 200 leave <1%
IMAGE_IG_STEPS = 200


# --- shared helpers -------------------------------------------------------------------------------------------


def train(model, loss_of_batch, steps: int, lr: float, seed: int = 0):
    """AdamW for `steps` batches drawn by `loss_of_batch(rng)`, in a forked random state; returns the model in
    eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            loss_of_batch(rng).backward()
            optimizer.step()
            optimizer.zero_grad()
    return model.eval()


def fillers(rng: random.Random, pool=FILLER_WORDS, low: int = 4, high: int = 9) -> list[str]:
    return [rng.choice(pool) for _ in range(rng.randint(low, high))]


def top(scores: list[tuple[str, float]]) -> int:
    """The index of the element with the largest (signed) attribution."""
    return max(range(len(scores)), key=lambda i: scores[i][1])


class Completeness:
    """The largest IG completeness residual seen, relative to f(x) - f(b), over all IG explanations."""

    def __init__(self):
        self.worst = 0.0

    def check(self, outputs) -> None:
        for output in outputs if isinstance(outputs, list) else [outputs]:
            if output.convergence_delta is None:
                continue
            gap = output.attributions.nansum(-1) - output.convergence_delta  # f(x) - f(b) per target
            relative = (output.convergence_delta.abs() / gap.abs().clamp_min(1e-12)).max()
            self.worst = max(self.worst, float(relative))


def explainers(cls, model, tokenizer) -> dict:
    return {
        name: cls(
            model,
            tokenizer,
            method=method,
            progress=False,
            **({"n_perturbations": IG_STEPS} if name == "IG" else {}),
        )
        for name, method in METHODS.items()
    }


# --- sequence classification: the zoo's planted classifier ------------------------------------------------------


def sequence_task(n: int, completeness: Completeness, out: Path) -> dict:
    model, tokenizer = planted_classifier()
    held_out = planted_sentences(500, seed=1_000)
    encoded = tokenizer([t for t, _, _ in held_out], padding=True, return_tensors="pt")
    with torch.inference_mode():
        predicted = model(**encoded).logits.argmax(-1)
    accuracy = float((predicted == torch.tensor([label for _, label, _ in held_out])).float().mean())
    hits = {}
    for name, explainer in explainers(SequenceClassificationExplainer, model, tokenizer).items():
        hits[name] = 0
        for text, label, index in planted_sentences(n, seed=2_000):
            scores = explainer(text)
            completeness.check(explainer.attributions)
            hits[name] += explainer.predicted_class_index == label and top(scores) == index
    explainer = SequenceClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    text, label, index = planted_sentences(1, seed=2_000)[0]
    scores = explainer(text)
    words = text.split()
    # occlusion is the model's own difference: the marker replaced by [MASK]
    masked = " ".join(tokenizer.mask_token if i == index else w for i, w in enumerate(words))
    with torch.inference_mode():
        logits = model(**tokenizer([text, masked], padding=True, return_tensors="pt")).logits[:, label]
    difference = float(logits[0] - logits[1])
    occlusion_residual = abs(scores[index][1] - difference) / max(
        abs(float(logits[0])), abs(float(logits[1]))
    )
    assert occlusion_residual <= 1e-4, occlusion_residual
    # escaping: a text with markup shows it as text
    explainer("<script>alert(1)</script> a great film")
    page = explainer.visualize()
    escaped = "<script" not in page.lower() and "&lt;" in page
    assert escaped, "visualize() let a token's markup through"
    explainer(text)
    explainer.visualize(out / "sequence.html")
    return {
        "name": "SequenceClassificationExplainer",
        "model": "zoo `planted_classifier()`: 'great' -> positive, 'awful' -> negative",
        "accuracy": accuracy,
        "hits": hits,
        "n": n,
        "example": {
            "text": text,
            "planted": words[index],
            "found": scores[top(scores)][0],
            "predicted": explainer.predicted_class_name,
        },
        "panel": {
            "title": f"SequenceClassificationExplainer: predicted {explainer.predicted_class_name}",
            "columns": words,
            "rows": [f"{explainer.predicted_class_name} logit"],
            "values": [[s for _, s in scores]],
            "planted": [index],
        },
        "occlusion_residual": occlusion_residual,
        "html_escaped": escaped,
        "html": "sequence.html",
    }


# --- question answering -----------------------------------------------------------------------------------------


def qa_context(rng: random.Random) -> list[str]:
    words = fillers(rng, QA_FILLERS)
    for category in sorted(CATEGORIES):
        words.insert(rng.randint(0, len(words)), rng.choice(CATEGORIES[category]))
    return words


def answer_index(words: list[str], category: str) -> int:
    return next(i for i, word in enumerate(words) if word in CATEGORIES[category])


def qa_batch(tokenizer, samples):
    encoded = tokenizer(
        [q for q, _, _ in samples], [" ".join(w) for _, w, _ in samples], padding=True, return_tensors="pt"
    )
    positions = []
    for row, (_, _, answer) in enumerate(samples):
        sequence_ids, word_ids = encoded.sequence_ids(row), encoded.word_ids(row)
        positions.append(next(i for i, w in enumerate(word_ids) if sequence_ids[i] == 1 and w == answer))
    return encoded, torch.tensor(positions)


def qa_sample(rng: random.Random):
    words = qa_context(rng)
    category = rng.choice(sorted(CATEGORIES))
    return f"find the {category}", words, answer_index(words, category)


def qa_task(n: int, completeness: Completeness, out: Path) -> dict:
    tokenizer = bert_wordpiece_tokenizer()
    model = seeded_model(BertForQuestionAnswering, tiny_bert_config(len(tokenizer)), seed=0)

    def loss(rng):
        encoded, positions = qa_batch(tokenizer, [qa_sample(rng) for _ in range(BATCH_SIZE)])
        return model(**encoded, start_positions=positions, end_positions=positions).loss

    train(model, loss, steps=300, lr=3e-3)
    rng = random.Random(1_000)
    encoded, positions = qa_batch(tokenizer, [qa_sample(rng) for _ in range(500)])
    context = torch.tensor([[s == 1 for s in encoded.sequence_ids(r)] for r in range(len(positions))])
    with torch.inference_mode():
        outputs = model(**encoded)
    starts = outputs.start_logits.masked_fill(~context, float("-inf")).argmax(-1)
    ends = outputs.end_logits.masked_fill(~context, float("-inf")).argmax(-1)
    accuracy = float(((starts == positions) & (ends == positions)).float().mean())
    hits, answered = {}, {}
    for name, explainer in explainers(QuestionAnsweringExplainer, model, tokenizer).items():
        hits[name] = answered[name] = 0
        rng = random.Random(2_000)
        for k in range(n):
            words = qa_context(rng)
            category = sorted(CATEGORIES)[k % 2]
            question, answer = f"find the {category}", answer_index(words, category)
            result = explainer(question, " ".join(words))
            completeness.check(explainer.attributions)
            q = len(question.split())
            answered[name] += explainer.predicted_answer == words[answer]
            hits[name] += top(result["start"][q:]) == answer and top(result["end"][q:]) == answer
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=Occlusion, progress=False)
    words = qa_context(random.Random(2_000))
    question, answer = "find the color", answer_index(words, "color")
    result = explainer(question, " ".join(words))
    explainer.visualize(out / "question-answering.html")
    q = len(question.split())
    return {
        "name": "QuestionAnsweringExplainer",
        "model": "tiny BERT QA: the answer is the context's word of the asked category",
        "accuracy": accuracy,
        "hits": hits,
        "answered": answered,
        "n": n,
        "example": {
            "text": f"{question} | {' '.join(words)}",
            "planted": words[answer],
            "found": f"start {result['start'][q + top(result['start'][q:])][0]}, "
            f"end {result['end'][q + top(result['end'][q:])][0]}",
            "predicted": explainer.predicted_answer,
        },
        "panel": {
            "title": f"QuestionAnsweringExplainer: answer {explainer.predicted_answer!r}",
            "columns": question.split() + words,
            "rows": ["start logit", "end logit"],
            "values": [[s for _, s in result["start"]], [s for _, s in result["end"]]],
            "planted": [q + answer],
        },
        "html": "question-answering.html",
    }


# --- token classification ---------------------------------------------------------------------------------------


def token_sentence(rng: random.Random) -> list[str]:
    words = fillers(rng)
    for _ in range(rng.randint(0, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice(MARKERS))
    return words


def token_labels(tokenizer, encoded) -> torch.Tensor:
    marker_ids = set(tokenizer.convert_tokens_to_ids(list(MARKERS)))
    labels = torch.tensor(
        [[int(i) in marker_ids for i in row] for row in encoded["input_ids"].tolist()]
    ).long()
    labels[encoded["attention_mask"] == 0] = -100
    return labels


def token_task(n: int, completeness: Completeness, out: Path) -> dict:
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=2)
    config.id2label, config.label2id = {0: "O", 1: "MARK"}, {"O": 0, "MARK": 1}
    model = seeded_model(BertForTokenClassification, config, seed=0)

    def loss(rng):
        texts = [" ".join(token_sentence(rng)) for _ in range(BATCH_SIZE)]
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        return model(**encoded, labels=token_labels(tokenizer, encoded)).loss

    train(model, loss, steps=150, lr=3e-3)
    rng = random.Random(1_000)
    encoded = tokenizer(
        [" ".join(token_sentence(rng)) for _ in range(500)], padding=True, return_tensors="pt"
    )
    labels = token_labels(tokenizer, encoded)
    with torch.inference_mode():
        predicted = model(**encoded).logits.argmax(-1)
    accuracy = float(((predicted == labels) | (labels == -100)).all(-1).float().mean())
    hits, explained = {}, {}
    for name, explainer in explainers(TokenClassificationExplainer, model, tokenizer).items():
        hits[name] = explained[name] = 0
        rng = random.Random(2_000)
        while explained[name] < n:
            words = token_sentence(rng)
            if not any(word in MARKERS for word in words):
                continue
            result = explainer(" ".join(words), ignored_labels=["O"])
            completeness.check(explainer.attributions)
            word_ids = tokenizer(" ".join(words)).word_ids()
            for position, item in result.items():
                explained[name] += 1
                hits[name] += top(item["attribution_scores"]) == word_ids[position]
    explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    rng = random.Random(3)
    words = token_sentence(rng)
    while sum(word in MARKERS for word in words) < 2:
        words = token_sentence(rng)
    result = explainer(" ".join(words), ignored_labels=["O"])
    explainer.visualize(out / "token-classification.html")
    word_ids = tokenizer(" ".join(words)).word_ids()
    return {
        "name": "TokenClassificationExplainer",
        "model": "tiny BERT tagger: 'great' and 'awful' are MARK, other tokens O",
        "accuracy": accuracy,
        "hits": hits,
        "n": n,
        "n_explained": explained,
        "example": {
            "text": " ".join(words),
            "planted": ", ".join(w for w in words if w in MARKERS),
            "found": ", ".join(
                f"{item['token']} -> {words[top(item['attribution_scores'])]}" for item in result.values()
            ),
            "predicted": ", ".join(f"{item['token']}: {item['label']}" for item in result.values()),
        },
        "panel": {
            "title": "TokenClassificationExplainer: tokens predicted MARK",
            "columns": words,
            "rows": [f"{item['token']!r} {item['label']}" for item in result.values()],
            "values": [[s for _, s in item["attribution_scores"]] for item in result.values()],
            "planted": [word_ids[p] for p in result],
        },
        "html": "token-classification.html",
    }


# --- NLI: zero-shot and pairwise --------------------------------------------------------------------------------


def premise(rng: random.Random) -> tuple[list[str], str, int]:
    words = fillers(rng, NLI_FILLERS)
    topic = rng.choice(TOPIC_LABELS)
    index = rng.randint(0, len(words))
    words.insert(index, TOPICS[topic])
    return words, topic, index


def nli_pair(rng: random.Random) -> tuple[list[str], str, int]:
    if rng.random() < 0.2:
        return fillers(rng, NLI_FILLERS), rng.choice(TOPIC_LABELS), 1
    words, topic, _ = premise(rng)
    if rng.random() < 0.5:
        return words, topic, 2
    return words, rng.choice([label for label in TOPIC_LABELS if label != topic]), 0


def nli_encode(tokenizer, pairs):
    return tokenizer(
        [" ".join(w) for w, _, _ in pairs],
        [TEMPLATE.format(label) for _, label, _ in pairs],
        padding=True,
        return_tensors="pt",
    )


def nli_model():
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=3)
    config.id2label = dict(NLI_LABELS)
    config.label2id = {label: index for index, label in NLI_LABELS.items()}
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    model = seeded_model(BertForSequenceClassification, config, seed=0)

    def loss(rng):
        pairs = [nli_pair(rng) for _ in range(BATCH_SIZE)]
        return model(**nli_encode(tokenizer, pairs), labels=torch.tensor([y for _, _, y in pairs])).loss

    train(model, loss, steps=450, lr=1e-3)
    rng = random.Random(1_000)
    pairs = [nli_pair(rng) for _ in range(600)]
    with torch.inference_mode():
        predicted = model(**nli_encode(tokenizer, pairs)).logits.argmax(-1)
    accuracy = float((predicted == torch.tensor([y for _, _, y in pairs])).float().mean())
    return model, tokenizer, accuracy


def zero_shot_task(model, tokenizer, accuracy: float, n: int, completeness: Completeness, out: Path) -> dict:
    hits = {}
    for name, explainer in explainers(ZeroShotClassificationExplainer, model, tokenizer).items():
        hits[name] = 0
        rng = random.Random(2_000)
        for _ in range(n):
            words, topic, index = premise(rng)
            result = explainer(" ".join(words), TOPIC_LABELS, hypothesis_template=TEMPLATE)
            completeness.check(explainer.attributions)
            hits[name] += explainer.predicted_label == topic and top(result[topic]) == index
    # the same premises with IG's default 50 path points, to show why the gallery uses more
    default_steps = Completeness()
    explainer = ZeroShotClassificationExplainer(model, tokenizer, progress=False)
    rng = random.Random(2_000)
    for _ in range(n):
        explainer(" ".join(premise(rng)[0]), TOPIC_LABELS, hypothesis_template=TEMPLATE)
        default_steps.check(explainer.attributions)
    explainer = ZeroShotClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    words, topic, index = premise(random.Random(5))
    result = explainer(" ".join(words), TOPIC_LABELS, hypothesis_template=TEMPLATE)
    explainer.visualize(out / "zero-shot.html")
    return {
        "name": "ZeroShotClassificationExplainer",
        "model": "tiny NLI BERT: 'bread' / 'song' / 'rain' entail food / music / weather",
        "accuracy": accuracy,
        "hits": hits,
        "n": n,
        "example": {
            "text": " ".join(words),
            "planted": f"{words[index]} ({topic})",
            "found": words[top(result[explainer.predicted_label])],
            "predicted": explainer.predicted_label,
        },
        "panel": {
            "title": f"ZeroShotClassificationExplainer: predicted {explainer.predicted_label!r}",
            "columns": words,
            "rows": [f"{label} (p={explainer.pred_probs[label]:.2f})" for label in TOPIC_LABELS],
            "values": [[s for _, s in result[label]] for label in TOPIC_LABELS],
            "planted": [index],
        },
        "html": "zero-shot.html",
        "ig_completeness_worst_50_steps": default_steps.worst,
    }


def pairwise_task(model, tokenizer, accuracy: float, n: int, completeness: Completeness, out: Path) -> dict:
    hits = {}
    for name, explainer in explainers(PairwiseSequenceClassificationExplainer, model, tokenizer).items():
        hits[name] = 0
        rng = random.Random(2_000)
        for _ in range(n):
            words, topic, index = premise(rng)
            other = TOPIC_LABELS[(TOPIC_LABELS.index(topic) + 1) % len(TOPIC_LABELS)]
            for label, expected in ((topic, "entailment"), (other, "contradiction")):
                result = explainer(" ".join(words), TEMPLATE.format(label))
                completeness.check(explainer.attributions)
                hits[name] += (
                    explainer.predicted_class_name == expected and top(result[: len(words)]) == index
                )
    explainer = PairwiseSequenceClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    words, topic, index = premise(random.Random(5))
    other = TOPIC_LABELS[(TOPIC_LABELS.index(topic) + 1) % len(TOPIC_LABELS)]
    rows, values, found, predicted = [], [], [], []
    for label in (topic, other):
        result = explainer(" ".join(words), TEMPLATE.format(label))
        rows.append(f"'... about {label}': {explainer.predicted_class_name}")
        values.append([s for _, s in result])
        found.append(words[top(result[: len(words)])])
        predicted.append(explainer.predicted_class_name)
        if label == topic:
            explainer.visualize(out / "pairwise.html")
    hypothesis = TEMPLATE.format(f"{topic}/{other}").split()
    return {
        "name": "PairwiseSequenceClassificationExplainer",
        "model": "the same NLI BERT, on (premise, 'this text is about {label}.')",
        "accuracy": accuracy,
        "hits": hits,
        "n": 2 * n,
        "example": {
            "text": f"{' '.join(words)} | {TEMPLATE.format(topic)} ; {TEMPLATE.format(other)}",
            "planted": words[index],
            "found": " / ".join(found),
            "predicted": " / ".join(predicted),
        },
        "panel": {
            "title": "PairwiseSequenceClassificationExplainer: premise | hypothesis",
            "columns": words + [f"[h] {w}" for w in hypothesis],
            "rows": rows,
            "values": values,
            "planted": [index],
        },
        "html": "pairwise.html",
    }


# --- multi-label ------------------------------------------------------------------------------------------------


def multilabel_sample(rng: random.Random) -> tuple[list[str], list[bool]]:
    words = fillers(rng)
    present = [rng.random() < 0.5 for _ in MARKERS]
    for marker, on in zip(MARKERS, present, strict=True):
        if on:
            words.insert(rng.randint(0, len(words)), marker)
    return words, present


def multilabel_task(n: int, completeness: Completeness, out: Path) -> dict:
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=2)
    config.id2label = dict(MULTI_LABELS)
    config.label2id = {label: index for index, label in MULTI_LABELS.items()}
    config.problem_type = "multi_label_classification"
    model = seeded_model(BertForSequenceClassification, config, seed=0)

    def loss(rng):
        samples = [multilabel_sample(rng) for _ in range(BATCH_SIZE)]
        encoded = tokenizer([" ".join(w) for w, _ in samples], padding=True, return_tensors="pt")
        targets = torch.tensor([present for _, present in samples], dtype=torch.float32)
        return F.binary_cross_entropy_with_logits(model(**encoded).logits, targets)

    train(model, loss, steps=150, lr=3e-3)
    rng = random.Random(1_000)
    samples = [multilabel_sample(rng) for _ in range(500)]
    encoded = tokenizer([" ".join(w) for w, _ in samples], padding=True, return_tensors="pt")
    with torch.inference_mode():
        predicted = model(**encoded).logits > 0
    accuracy = float((predicted == torch.tensor([p for _, p in samples])).all(-1).float().mean())
    hits, checked = {}, {}
    for name, explainer in explainers(MultiLabelClassificationExplainer, model, tokenizer).items():
        hits[name] = checked[name] = 0
        rng = random.Random(2_000)
        while checked[name] < n:
            words, present = multilabel_sample(rng)
            result = explainer(" ".join(words))
            completeness.check(explainer.attributions)
            for k, (marker, on) in enumerate(zip(MARKERS, present, strict=True)):
                if on:
                    checked[name] += 1
                    scores = result[MULTI_LABELS[k]]
                    hits[name] += (
                        MULTI_LABELS[k] in explainer.predicted_labels and scores[top(scores)][0] == marker
                    )
    explainer = MultiLabelClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    rng = random.Random(4)
    words, present = multilabel_sample(rng)
    while not all(present):
        words, present = multilabel_sample(rng)
    result = explainer(" ".join(words))
    explainer.visualize(out / "multilabel.html")
    labels = list(MULTI_LABELS.values())
    return {
        "name": "MultiLabelClassificationExplainer",
        "model": "tiny BERT multi-label: GREAT iff 'great', AWFUL iff 'awful'",
        "accuracy": accuracy,
        "hits": hits,
        "n": n,
        "n_explained": checked,
        "example": {
            "text": " ".join(words),
            "planted": "great (GREAT), awful (AWFUL)",
            "found": ", ".join(f"{label} -> {result[label][top(result[label])][0]}" for label in labels),
            "predicted": ", ".join(explainer.predicted_labels),
        },
        "panel": {
            "title": f"MultiLabelClassificationExplainer: predicted {', '.join(explainer.predicted_labels)}",
            "columns": words,
            "rows": [f"{label} (p={explainer.pred_probs[label]:.2f})" for label in labels],
            "values": [[s for _, s in result[label]] for label in labels],
            "planted": [i for i, w in enumerate(words) if w in MARKERS],
        },
        "html": "multilabel.html",
    }


# --- image classification ---------------------------------------------------------------------------------------


def image_sample(rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """A grey-noise `16 x 16 x 3` uint8 image with one 4 x 4 tile of pure red, green or blue: (image, colour
    index, tile index in row-major order)."""
    grey = rng.integers(0, 256, size=(IMAGE, IMAGE, 1))
    image = np.repeat(grey, 3, axis=2).astype(np.uint8)
    color, tile = int(rng.integers(0, len(COLORS))), int(rng.integers(0, (IMAGE // PATCH) ** 2))
    row, column = divmod(tile, IMAGE // PATCH)
    image[PATCH * row : PATCH * (row + 1), PATCH * column : PATCH * (column + 1)] = list(COLORS.values())[
        color
    ]
    return image, color, tile


def pixel_values(images) -> torch.Tensor:
    """What `ViTImageProcessor` makes of these images at 16 x 16 (rescale to [0, 1], normalize by 0.5, 0.5)."""
    x = torch.tensor(np.stack(images)).float().permute(0, 3, 1, 2) / 255
    return (x - 0.5) / 0.5


def tile_scores(attributions: torch.Tensor) -> torch.Tensor:
    """Attributions summed over each patch tile, row-major."""
    k = IMAGE // PATCH
    return attributions.reshape(k, PATCH, k, PATCH).sum((1, 3)).flatten()


def image_task(n: int, out: Path) -> dict:
    labels = dict(enumerate(COLORS))
    config = ViTConfig(
        image_size=IMAGE, patch_size=PATCH, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=len(labels), id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    model = seeded_model(ViTForImageClassification, config, seed=0)
    processor = ViTImageProcessor(size={"height": IMAGE, "width": IMAGE})
    generator = np.random.default_rng(0)

    def loss(_rng):
        batch = [image_sample(generator) for _ in range(64)]
        targets = torch.tensor([color for _, color, _ in batch])
        return model(pixel_values=pixel_values([image for image, _, _ in batch]), labels=targets).loss

    train(model, loss, steps=300, lr=3e-3)
    generator = np.random.default_rng(1_000)
    held_out = [image_sample(generator) for _ in range(500)]
    torch.testing.assert_close(
        pixel_values([held_out[0][0]]), processor(images=held_out[0][0], return_tensors="pt")["pixel_values"]
    )
    with torch.inference_mode():
        predicted = model(pixel_values=pixel_values([image for image, _, _ in held_out])).logits.argmax(-1)
    accuracy = float((predicted == torch.tensor([color for _, color, _ in held_out])).float().mean())
    hits, worst = {}, 0.0
    generator = np.random.default_rng(2_000)
    tests = [image_sample(generator) for _ in range(n)]
    for name, method in (("Occlusion", "occlusion"), ("IG", "integrated_gradients")):
        explainer = ImageClassificationExplainer(model, processor, method=method, n_steps=IMAGE_IG_STEPS)
        hits[name] = 0
        for image, color, tile in tests:
            attributions = explainer(image)
            hits[name] += (
                explainer.predicted_class_index == color and int(tile_scores(attributions).argmax()) == tile
            )
            if explainer.convergence_delta is not None:
                gap = float(attributions.sum()) - explainer.convergence_delta
                worst = max(worst, abs(explainer.convergence_delta) / abs(gap))
    assert worst <= 0.01, worst
    default_steps = ImageClassificationExplainer(model, processor)  # IG's default 50 points
    worst_50 = 0.0
    for image, _, _ in tests:
        attributions = default_steps(image)
        gap = float(attributions.sum()) - default_steps.convergence_delta
        worst_50 = max(worst_50, abs(default_steps.convergence_delta) / abs(gap))
    image, color, tile = tests[0]
    explainer = ImageClassificationExplainer(model, processor, n_steps=IMAGE_IG_STEPS)
    attributions = explainer(image)
    explainer.visualize(method="heatmap", save_path=out / "image-classification.png", side_by_side=True)
    # occlusion is the model's own difference: the planted tile set to the baseline (0, the mean image)
    occlusion = ImageClassificationExplainer(model, processor, method="occlusion")(image)
    row, column = divmod(tile, IMAGE // PATCH)
    masked = explainer.pixel_values.clone()
    masked[..., PATCH * row : PATCH * (row + 1), PATCH * column : PATCH * (column + 1)] = 0.0
    with torch.inference_mode():
        logits = model(pixel_values=torch.cat([explainer.pixel_values, masked])).logits[:, color]
    difference = float(logits[0] - logits[1])
    residual = abs(float(occlusion[PATCH * row, PATCH * column]) - difference) / float(logits.abs().max())
    assert residual <= 1e-4, residual
    return {
        "name": "ImageClassificationExplainer",
        "model": "tiny ViT: the colour of the one coloured 4x4 tile",
        "accuracy": accuracy,
        "hits": hits,
        "n": n,
        "example": {
            "text": f"{labels[color]} tile at row {row}, column {column}",
            "planted": f"tile ({row}, {column})",
            "found": "tile ({}, {})".format(*divmod(int(tile_scores(attributions).argmax()), IMAGE // PATCH)),
            "predicted": explainer.predicted_class_name,
        },
        "image": explainer.image(),
        "attributions": attributions.numpy(),
        "occlusion": occlusion.numpy(),
        "tile": (row, column),
        "ig_completeness_worst": worst,
        "ig_completeness_worst_50_steps": worst_50,
        "occlusion_residual": residual,
        "html": "image-classification.png",
    }


# --- figure and page --------------------------------------------------------------------------------------------


def heatmap(ax, panel: dict) -> None:
    """Rows = explained targets, columns = elements; colour = attribution / the row's largest |attribution|,
    text = the attribution; the planted elements' labels in red, each row's top element outlined."""
    values = np.array(panel["values"], dtype=float)
    scale = np.abs(values).max(axis=1, keepdims=True)
    normalized = values / np.where(scale > 0, scale, 1)
    ax.imshow(normalized, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            color = "white" if abs(normalized[i, j]) > 0.6 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
        j = int(np.nanargmax(row))
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(len(panel["columns"])), panel["columns"], rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(panel["rows"])), panel["rows"], fontsize=8)
    for j, label in enumerate(ax.get_xticklabels()):
        if j in panel["planted"]:
            label.set_color("red")
            label.set_fontweight("bold")
    ax.set_title(panel["title"], fontsize=10)


def plot(results: list[dict], path: Path) -> None:
    figure = Figure(figsize=(14, 14), layout="constrained")
    grid = figure.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.15])
    text_results = [r for r in results if "panel" in r]
    for k, result in enumerate(text_results):
        heatmap(figure.add_subplot(grid[k // 2, k % 2]), result["panel"])
    image = next(r for r in results if "image" in r)
    axes = grid[3, :].subgridspec(1, 3).subplots()
    row, column = image["tile"]
    axes[0].imshow(image["image"])
    axes[0].set_title("ImageClassificationExplainer: input, planted tile outlined", fontsize=10)
    for ax, name in zip(axes[1:], ("occlusion", "attributions"), strict=True):
        limit = float(np.abs(image[name]).max())
        ax.imshow(image[name], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1].set_title(f"Occlusion (per 4x4 tile), predicted {image['example']['predicted']}", fontsize=10)
    axes[2].set_title(f"IG pixel attributions ({IMAGE_IG_STEPS} steps)", fontsize=10)
    for ax in axes:
        ax.add_patch(Rectangle((PATCH * column - 0.5, PATCH * row - 0.5), PATCH, PATCH, fill=False,
                               edgecolor="black", linewidth=2))  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(
        "Task explainers on planted models. Text: Occlusion; red label: planted element; outlined: each row's "
        "top element; colour: attribution / row's max |attribution|",
        fontsize=11,
    )
    figure.savefig(path, dpi=100)


def markdown(results: list[dict], data: dict, seconds: float) -> str:
    rows = []
    for r in results:
        hits = " | ".join(
            f"{r['hits'][name]}/{r.get('n_explained', {}).get(name, r['n'])}" for name in METHODS
        )
        example = r["example"]
        rows.append(
            f"| `{r['name']}` | {r['model']} | {r['accuracy']:.3f} | {example['planted']} | {example['found']} "
            f"| {example['predicted']} | {hits} |"
        )
    links = ", ".join(f"[{r['name']}]({PAGE}/{r['html']})" for r in results if r["html"].endswith(".html"))
    return f"""# Task explainers on planted models

`interpreto.explainers` wraps any attribution method in transformers-interpret's call shapes for each task:
sequence classification, extractive question answering, token classification, zero-shot classification with an
NLI model, text pairs, multi-label classification and image classification. A hub model gives no way to check an
explanation, so each explainer here runs on a tiny model whose decision rests on one known word (or image tile),
planted by construction: the zoo's `planted_classifier()`, and tiny BERTs and a tiny ViT trained by the script in
a few seconds each (the recipes of `tests/explainers/`). A faithful explainer must put its largest attribution on
the planted element. Each model's held-out accuracy is checked first; then `--n-explained` fresh inputs per
explainer are explained with `Occlusion` and with `IntegratedGradients`, and a hit is a correct prediction whose
top element is the planted one.

![One panel per explainer: attributions of an example, the planted element in red]({PAGE}.png)

| explainer | model (planted truth) | held-out accuracy | example: planted | example: top element | example: prediction | hits, Occlusion | hits, IG |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Hits: QA counts the start and end logits' top context word both on the answer; token classification counts each
token predicted MARK, whose top word must be its own; pairwise explains each premise with its entailed and a
contradicted hypothesis; multi-label counts each present label, whose top word must be its marker; image
classification sums the pixel attributions per 4 x 4 tile. IG runs {IG_STEPS} path points on text and
{IMAGE_IG_STEPS} on the image: with the default 50, the quadrature leaves up to
{100 * data["ig_completeness_worst_50_steps_zero_shot"]:.0f}% of f(x) - f(baseline) unexplained on the zero-shot
explanations and {100 * data["ig_completeness_worst_50_steps_image"]:.1f}% on the image ones.

Checked by the run:

- occlusion is the model's own difference: relative residual {data["occlusion_residual_text"]:.1e} when the
  planted word is replaced by `[MASK]`, {data["occlusion_residual_image"]:.1e} when the planted tile is set to
  the baseline;
- IG completeness: the largest residual of all IG explanations is {100 * data["ig_completeness_worst_text"]:.2g}%
  (text) and {100 * data["ig_completeness_worst_image"]:.2g}% (image) of f(x) - f(baseline);
- `visualize()` escapes tokens: a text holding `<script>` renders it as text.

The examples' `visualize()` pages (text explainers, Occlusion): {links}; the image explainer's own figure (IG):
[image-classification.png]({PAGE}/image-classification.png).

{provenance(seconds)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-explained", type=int, default=20, help="inputs explained per explainer and method"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)
    out = DOCS_GALLERY / PAGE
    out.mkdir(parents=True, exist_ok=True)
    completeness = Completeness()
    n = args.n_explained
    results = []
    for build in (
        lambda: sequence_task(n, completeness, out),
        lambda: qa_task(n, completeness, out),
        lambda: token_task(n, completeness, out),
        lambda: multilabel_task(n, completeness, out),
    ):
        start = time.perf_counter()
        results.append(build())
        print(
            f"{results[-1]['name']}: {time.perf_counter() - start:.1f} s, {results[-1]['hits']}", flush=True
        )
    start = time.perf_counter()
    nli = nli_model()
    results.append(zero_shot_task(*nli, n, completeness, out))
    results.append(pairwise_task(*nli, n, completeness, out))
    print(
        f"NLI: {time.perf_counter() - start:.1f} s, {results[-2]['hits']} {results[-1]['hits']}", flush=True
    )
    start = time.perf_counter()
    results.append(image_task(n, out))
    print(f"image: {time.perf_counter() - start:.1f} s, {results[-1]['hits']}", flush=True)
    assert completeness.worst <= 0.01, completeness.worst
    for result in results:
        assert result["accuracy"] >= 0.98, (result["name"], result["accuracy"])
    plot(results, DOCS_GALLERY / f"{PAGE}.png")
    seconds = time.perf_counter() - began
    data = {
        "n_explained": n,
        "seconds": seconds,
        "occlusion_residual_text": results[0]["occlusion_residual"],
        "occlusion_residual_image": results[-1]["occlusion_residual"],
        "ig_completeness_worst_text": completeness.worst,
        "ig_completeness_worst_image": results[-1]["ig_completeness_worst"],
        "ig_completeness_worst_50_steps_zero_shot": results[-3]["ig_completeness_worst_50_steps"],
        "ig_completeness_worst_50_steps_image": results[-1]["ig_completeness_worst_50_steps"],
        "html_escaped": results[0]["html_escaped"],
        "explainers": [
            {key: value for key, value in r.items() if key not in ("image", "attributions", "occlusion")}
            for r in results
        ],
    }
    page = write_page(PAGE, markdown(results, data, seconds), data)
    for r in results:
        found = {name: f"{r['hits'][name]}/{r.get('n_explained', {}).get(name, r['n'])}" for name in METHODS}
        print(f"{r['name']:42} accuracy {r['accuracy']:.3f}  hits {found}  example {r['example']}")
    print(
        f"IG completeness worst: text {completeness.worst:.2e}, image {results[-1]['ig_completeness_worst']:.2e}"
    )
    print(f"wrote {page} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
