"""The token classification explainer explains the model's own label at each token, with its own numbers."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertForTokenClassification

from interpreto import IntegratedGradients, KernelShap, Occlusion
from interpreto.explainers import TokenClassificationExplainer
from interpreto.model.task import make_task
from interpreto.model.token_classification import TokenClassificationTask
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo.tiny import seeded_model, tiny_bert_config
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale, magnitude

TEXT = "the cat sat on the mat"
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"}


@pytest.fixture(scope="module")
def ner():
    tokenizer = bert_wordpiece_tokenizer()
    config = tiny_bert_config(len(tokenizer), num_labels=len(NER_LABELS))
    config.id2label = dict(NER_LABELS)
    config.label2id = {label: index for index, label in NER_LABELS.items()}
    return seeded_model(BertForTokenClassification, config, seed=4), tokenizer


def _logits(model, tokenizer, text):
    encoded = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return model(**encoded).logits[0], encoded


def test_token_labels_are_argmax_of_model_logits(ner):
    model, tokenizer = ner
    explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    result = explainer(TEXT)
    logits, encoded = _logits(model, tokenizer, TEXT)
    text_positions = list(range(1, encoded["input_ids"].shape[1] - 1))  # all but [CLS] and [SEP]
    assert list(result) == text_positions
    assert explainer.input_tokens == tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    for position in text_positions:
        assert result[position]["label"] == NER_LABELS[int(logits[position].argmax())]
        assert result[position]["token"] == explainer.input_tokens[position]
    assert len(set(explainer.predicted_labels.values())) > 1  # the random model predicts several labels


def test_token_occlusion_is_label_logit_drop_per_word(ner):
    """Each word's attribution is the drop of the explained label's logit at the explained token when all of
    the word's tokens are masked."""
    model, tokenizer = ner
    result = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)(TEXT)
    logits, encoded = _logits(model, tokenizer, TEXT)
    words: dict[int, list[int]] = {}
    for position, word in enumerate(encoded.word_ids()):
        if word is not None:
            words.setdefault(word, []).append(position)
    with torch.inference_mode():
        masked_logits = []
        for positions in words.values():
            masked = {key: value.clone() for key, value in encoded.items()}
            masked["input_ids"][0, positions] = tokenizer.mask_token_id
            masked_logits.append(model(**masked).logits[0])
    for position, explanation in result.items():
        label = int(logits[position].argmax())
        assert [word for word, _ in explanation["attribution_scores"]] == TEXT.split()
        expected = [float(logits[position, label] - masked[position, label]) for masked in masked_logits]
        # differences of logits: their round-off is a fraction of the logits
        scale = magnitude(logits[position], *(masked[position] for masked in masked_logits))
        assert_close_to_scale(
            [score for _, score in explanation["attribution_scores"]], expected, scale=scale
        )


@pytest.mark.parametrize("method", [IntegratedGradients, KernelShap])
def test_token_equals_pipeline_with_positions(ner, method):
    model, tokenizer = ner
    kwargs = {"n_perturbations": 8, "progress": False}
    result = TokenClassificationExplainer(model, tokenizer, method=method, **kwargs)(TEXT)
    positions = list(result)
    direct = method(model, tokenizer, **kwargs)(TEXT, positions)[0]
    assert isinstance(make_task(model, tokenizer), TokenClassificationTask)
    assert direct.task == "token_classification"
    for row, position in enumerate(positions):
        assert NER_LABELS[direct.targets[row]] == result[position]["label"]
        scores = torch.tensor([score for _, score in result[position]["attribution_scores"]])
        torch.testing.assert_close(scores, direct.attributions[row])


def test_token_ignored_labels_and_indexes_are_skipped(ner):
    model, tokenizer = ner
    explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    full = explainer(TEXT)
    ignored = full[1]["label"]
    kept = explainer(TEXT, ignored_labels=[ignored], ignored_indexes=[2])
    assert list(kept) == [p for p, e in full.items() if e["label"] != ignored and p != 2]
    for position, explanation in kept.items():
        assert explanation["label"] == full[position]["label"]
        scores = [score for _, score in explanation["attribution_scores"]]
        assert_close_to_scale(scores, [score for _, score in full[position]["attribution_scores"]])
    assert explainer(TEXT, ignored_labels=list(NER_LABELS.values())) == {}
    assert explainer.attributions is None


def test_token_bad_inputs_name_the_argument(ner):
    model, tokenizer = ner
    explainer = TokenClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    with pytest.raises(ValueError, match=r"ignored_labels.*'B-ORG'.*B-PER"):
        explainer(TEXT, ignored_labels=["B-ORG"])
    with pytest.raises(IndexError, match="ignored_indexes"):
        explainer(TEXT, ignored_indexes=[99])
    with pytest.raises(ValueError, match="empty"):
        explainer("   ")
    with pytest.raises(TypeError, match="text"):
        explainer(None)
    with pytest.raises(RuntimeError, match="call the explainer"):
        explainer.visualize()
    with pytest.raises(IndexError, match="token position 99"):
        Occlusion(model, tokenizer, progress=False)(TEXT, [99])


def test_token_leaves_model_and_tokenizer_unchanged_and_visualizes(ner, tmp_path):
    model, tokenizer = copy.deepcopy(ner[0]), ner[1]
    model.train()
    before = snapshot(model, tokenizer)
    explainer = TokenClassificationExplainer(model, tokenizer, n_perturbations=8, progress=False)
    explainer("a <b>cat</b> sat", ignored_indexes=[1])
    with pytest.raises(ValueError):
        explainer(TEXT, ignored_labels=["nope"])
    assert_unchanged(before, snapshot(model, tokenizer))
    page = explainer.visualize(tmp_path / "tokens.html")
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert (tmp_path / "tokens.html").read_text(encoding="utf-8") == page
