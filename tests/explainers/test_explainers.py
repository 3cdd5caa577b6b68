"""Task explainers give the same numbers as the attribution pipeline, and the model's own numbers."""

from __future__ import annotations

import copy

import pytest
import torch

from interpreto import IntegratedGradients, KernelShap, Occlusion
from interpreto.explainers import (
    MultiLabelClassificationExplainer,
    PairwiseSequenceClassificationExplainer,
    SequenceClassificationExplainer,
    ZeroShotClassificationExplainer,
)
from interpreto.zoo.planted import MARKER_WORDS, planted_sentences
from interpreto.zoo.tiny import tiny_bert_classifier
from tests.conftest import assert_unchanged, scaled_head, snapshot
from tests.tolerance import assert_close_to_scale, magnitude

FAST = {"n_perturbations": 8, "progress": False}
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "Entailment"}


def _logits(model, tokenizer, text, text_pair=None) -> torch.Tensor:
    with torch.inference_mode():
        return model(**tokenizer(text, text_pair, return_tensors="pt")).logits[0]


@pytest.fixture(scope="module")
def nli():
    """A random 3-label BERT with NLI label names (entailment spelled with a capital, found anyway)."""
    model, tokenizer = tiny_bert_classifier(num_labels=3, seed=1)
    model = scaled_head(model, 20.0)
    model.config.id2label = dict(NLI_LABELS)
    model.config.label2id = {name: index for index, name in NLI_LABELS.items()}
    return model, tokenizer


@pytest.fixture(scope="module")
def cross_encoder():
    model, tokenizer = tiny_bert_classifier(num_labels=1, seed=2)
    return scaled_head(model, 20.0), tokenizer


@pytest.mark.parametrize("method", [IntegratedGradients, KernelShap])
def test_sequence_equals_method_on_predicted_class(bert, method):
    model, tokenizer = bert
    text = "the movie was great"
    explainer = SequenceClassificationExplainer(model, tokenizer, method=method, **FAST)
    result = explainer(text)
    direct = method(model, tokenizer, **FAST)(text)[0]
    logits = _logits(model, tokenizer, text)
    assert explainer.predicted_class_index == int(logits.argmax()) == direct.targets[0]
    assert explainer.predicted_class_name == model.config.id2label[explainer.predicted_class_index]
    assert_close_to_scale(explainer.pred_probs, logits.softmax(-1).max())
    assert [word for word, _ in result] == direct.elements == ["the", "movie", "was", "great"]
    torch.testing.assert_close(torch.tensor([score for _, score in result]), direct.attributions[0])
    assert explainer.attributions.method == method.__name__


def test_sequence_named_and_indexed_class(bert):
    model, tokenizer = bert
    explainer = SequenceClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    by_name = explainer("a fine film", class_name="LABEL_2")
    assert explainer.attributions.targets == [2]
    assert_close_to_scale(explainer.pred_probs, _logits(model, tokenizer, "a fine film").softmax(-1)[2])
    assert explainer("a fine film", index=2) == by_name
    direct = Occlusion(model, tokenizer, progress=False)("a fine film", 2)[0]
    assert [score for _, score in by_name] == direct.attributions[0].tolist()


def test_sequence_planted_marker_is_top_word(planted):
    model, tokenizer = planted
    explainer = SequenceClassificationExplainer(model, tokenizer, n_perturbations=16, progress=False)
    for text, label, marker_index in planted_sentences(8, seed=11):
        result = explainer(text)
        assert explainer.predicted_class_index == label
        top = max(range(len(result)), key=lambda i: result[i][1])
        assert top == marker_index and result[top][0] in MARKER_WORDS


def test_multilabel_explains_each_sigmoid(bert):
    model, tokenizer = bert
    text = "a fine film"
    explainer = MultiLabelClassificationExplainer(model, tokenizer, **FAST)
    result = explainer(text)
    direct = IntegratedGradients(model, tokenizer, score="sigmoid_probabilities", **FAST)(text, [0, 1, 2])[0]
    assert list(result) == ["LABEL_0", "LABEL_1", "LABEL_2"]
    for row, label in enumerate(result):
        torch.testing.assert_close(torch.tensor([s for _, s in result[label]]), direct.attributions[row])
    sigmoid = _logits(model, tokenizer, text).sigmoid()
    assert_close_to_scale(list(explainer.pred_probs.values()), sigmoid)
    assert_close_to_scale(explainer.attributions.scores, sigmoid)  # the explained score is the sigmoid
    assert explainer.predicted_labels == [label for label, p in explainer.pred_probs.items() if p > 0.5]


def test_pairwise_occlusion_is_model_difference_on_pair_encoding(cross_encoder):
    """Occlusion of each word equals the logit drop the model itself shows on the tokenizer's pair encoding."""
    model, tokenizer = cross_encoder
    explainer = PairwiseSequenceClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    result = explainer("a cat is", "the dog was")
    assert [word for word, _ in result] == ["a", "cat", "is", "the", "dog", "was"]
    assert explainer.attributions.text == "a cat is\nthe dog was"
    assert explainer.attributions.offsets[3] == (9, 12)
    encoded = tokenizer("a cat is", "the dog was", return_tensors="pt")
    assert encoded["token_type_ids"][0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    with torch.inference_mode():
        full = model(**encoded).logits[0, 0]
        for word_index, position in enumerate([1, 2, 3, 5, 6, 7]):
            masked = {key: value.clone() for key, value in encoded.items()}
            masked["input_ids"][0, position] = tokenizer.mask_token_id
            occluded = model(**masked).logits[0, 0]
            # a difference of logits: its round-off is a fraction of the logits
            assert_close_to_scale(result[word_index][1], full - occluded, scale=magnitude(full, occluded))
    assert explainer.predicted_class_index == 0
    assert_close_to_scale(explainer.pred_probs, full.sigmoid())


def test_pairwise_flip_sign_negates(cross_encoder):
    model, tokenizer = cross_encoder
    explainer = PairwiseSequenceClassificationExplainer(model, tokenizer, **FAST)
    toward_one = explainer("a cat sat", "the cat")
    toward_zero = explainer("a cat sat", "the cat", flip_sign=True)
    assert_close_to_scale([-s for _, s in toward_one], [s for _, s in toward_zero])
    logit = float(_logits(model, tokenizer, "a cat sat", "the cat")[0])
    assert_close_to_scale(explainer.attributions.scores[0], -logit)
    # completeness holds for the negated score too
    assert abs(float(explainer.attributions.convergence_delta[0])) < 0.05 * abs(logit) + 1e-3


def test_zero_shot_explains_entailment_logit_over_premise(nli):
    model, tokenizer = nli
    labels = ["cats", "dogs", "birds"]
    explainer = ZeroShotClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    result = explainer("the cat is", labels, hypothesis_template="it is about {}.")
    entailment = [float(_logits(model, tokenizer, "the cat is", f"it is about {x}.")[2]) for x in labels]
    probabilities = torch.tensor(entailment).softmax(-1)
    assert explainer.predicted_label == labels[int(probabilities.argmax())]
    assert_close_to_scale(list(explainer.pred_probs.values()), probabilities)
    for label, logit in zip(labels, entailment, strict=True):
        assert [word for word, _ in result[label]] == ["the", "cat", "is"]  # hypothesis words held fixed
        encoded = tokenizer("the cat is", f"it is about {label}.", return_tensors="pt")
        with torch.inference_mode():
            for word_index in range(3):
                masked = {key: value.clone() for key, value in encoded.items()}
                masked["input_ids"][0, 1 + word_index] = tokenizer.mask_token_id
                occluded = float(model(**masked).logits[0, 2])
                assert_close_to_scale(
                    result[label][word_index][1], logit - occluded, scale=magnitude(logit, occluded)
                )
    assert [output.targets for output in explainer.attributions] == [[2]] * 3


def test_zero_shot_equals_pipeline_with_fixed_hypothesis(nli):
    from interpreto.model.classification import TextPair

    model, tokenizer = nli
    result = ZeroShotClassificationExplainer(model, tokenizer, **FAST)("a good film", "fun")
    direct = IntegratedGradients(model, tokenizer, **FAST)(
        TextPair("a good film", "This example is fun.", False), 2
    )
    torch.testing.assert_close(torch.tensor([s for _, s in result["fun"]]), direct[0].attributions[0])


def test_bad_inputs_name_the_argument(bert, nli, cross_encoder):
    model, tokenizer = bert
    sequence = SequenceClassificationExplainer(model, tokenizer, **FAST)
    with pytest.raises(ValueError, match=r"class_name='nope'.*LABEL_0"):
        sequence("a film", class_name="nope")
    with pytest.raises(IndexError, match=r"index=3.*0\.\.2"):
        sequence("a film", index=3)
    with pytest.raises(ValueError, match="not both"):
        sequence("a film", class_name="LABEL_0", index=0)
    with pytest.raises(RuntimeError, match="call the explainer"):
        SequenceClassificationExplainer(model, tokenizer).visualize()
    with pytest.raises(ValueError, match="empty"):
        MultiLabelClassificationExplainer(model, tokenizer, **FAST)("  ")
    with pytest.raises(TypeError, match="text2"):
        PairwiseSequenceClassificationExplainer(*cross_encoder, **FAST)("a cat", None)
    with pytest.raises(ValueError, match="label2id has no entailment"):
        ZeroShotClassificationExplainer(model, tokenizer, **FAST)("a film", ["x"])
    zero_shot = ZeroShotClassificationExplainer(*nli, **FAST)
    with pytest.raises(ValueError, match="hypothesis_template"):
        zero_shot("a film", ["x"], hypothesis_template="no slot")
    with pytest.raises(ValueError, match="labels is empty"):
        zero_shot("a film", [])
    with pytest.raises(ValueError, match="duplicates"):
        zero_shot("a film", ["x", "x"])


def test_explainers_leave_model_and_tokenizer_unchanged(nli):
    model, tokenizer = copy.deepcopy(nli[0]), nli[1]
    model.train()
    before = snapshot(model, tokenizer)
    SequenceClassificationExplainer(model, tokenizer, **FAST)("a fine film")
    MultiLabelClassificationExplainer(model, tokenizer, **FAST)("a fine film")
    PairwiseSequenceClassificationExplainer(model, tokenizer, **FAST)("a cat", "a dog", flip_sign=True)
    ZeroShotClassificationExplainer(model, tokenizer, **FAST)("a fine film", ["fun", "sad"])
    with pytest.raises(ValueError):
        SequenceClassificationExplainer(model, tokenizer, **FAST)("a fine film", class_name="nope")
    assert_unchanged(before, snapshot(model, tokenizer))


def test_visualize_escapes_html(bert, tmp_path):
    model, tokenizer = bert
    explainer = SequenceClassificationExplainer(model, tokenizer, method=Occlusion, progress=False)
    result = explainer("<img src=x onerror=alert(1)> film")
    assert any("<" in word for word, _ in result)
    page = explainer.visualize(tmp_path / "page.html")
    assert "<img" not in page and "&lt;img" in page
    assert (tmp_path / "page.html").read_text(encoding="utf-8") == page
