"""The question answering explainer explains the model's own best span, with the model's own numbers."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertForQuestionAnswering

from interpreto import IntegratedGradients, KernelShap, Occlusion
from interpreto.explainers import QuestionAnsweringExplainer
from interpreto.model.question_answering import QuestionAnsweringTask
from interpreto.model.task import make_task
from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo.tiny import seeded_model, tiny_bert_config
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale, magnitude

QUESTION = "where is the cat"
CONTEXT = "the cat sat on the mat near the door"


@pytest.fixture(scope="module")
def qa():
    tokenizer = bert_wordpiece_tokenizer()
    return seeded_model(BertForQuestionAnswering, tiny_bert_config(len(tokenizer)), seed=3), tokenizer


def _best_span_by_hand(model, tokenizer, question, context):
    encoded = tokenizer(question, context, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**encoded)
    start, end = outputs.start_logits[0], outputs.end_logits[0]
    context_positions = [i for i, s in enumerate(encoded.sequence_ids()) if s == 1]
    spans = [(i, j) for i in context_positions for j in context_positions if j >= i]
    return max(spans, key=lambda span: float(start[span[0]] + end[span[1]])), encoded, outputs


def test_qa_predicted_span_is_best_context_span(qa):
    model, tokenizer = qa
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=Occlusion, progress=False)
    explainer(QUESTION, CONTEXT)
    (start, end), _, _ = _best_span_by_hand(model, tokenizer, QUESTION, CONTEXT)
    assert (explainer.start_index, explainer.end_index) == (start, end)
    offsets = tokenizer(QUESTION, CONTEXT, return_offsets_mapping=True)["offset_mapping"]
    assert explainer.predicted_answer == CONTEXT[offsets[start][0] : offsets[end][1]]
    assert explainer.predicted_answer and explainer.predicted_answer in CONTEXT


def test_qa_occlusion_is_start_and_end_logit_drop_per_word(qa):
    """Each word's attribution is the drop of the start (end) logit at the predicted start (end) token when all
    of the word's tokens are masked."""
    model, tokenizer = qa
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=Occlusion, progress=False)
    result = explainer(QUESTION, CONTEXT)
    (start, end), encoded, outputs = _best_span_by_hand(model, tokenizer, QUESTION, CONTEXT)
    words: dict[tuple[int, int], list[int]] = {}
    for position, (sequence, word) in enumerate(zip(encoded.sequence_ids(), encoded.word_ids(), strict=True)):
        if sequence is not None:
            words.setdefault((sequence, word), []).append(position)
    assert [word for word, _ in result["start"]] == QUESTION.split() + CONTEXT.split()
    assert len(words) == len(result["start"]) == len(result["end"])
    with torch.inference_mode():
        for index, positions in enumerate(words.values()):
            masked = {key: value.clone() for key, value in encoded.items()}
            masked["input_ids"][0, positions] = tokenizer.mask_token_id
            perturbed = model(**masked)
            expected_start = float(outputs.start_logits[0, start] - perturbed.start_logits[0, start])
            expected_end = float(outputs.end_logits[0, end] - perturbed.end_logits[0, end])
            # differences of logits: their round-off is a fraction of the logits
            scale = magnitude(
                outputs.start_logits, outputs.end_logits, perturbed.start_logits, perturbed.end_logits
            )
            assert_close_to_scale(result["start"][index][1], expected_start, scale=scale)
            assert_close_to_scale(result["end"][index][1], expected_end, scale=scale)
    assert result["start"] == explainer.start_attributions and result["end"] == explainer.end_attributions
    assert_close_to_scale(
        explainer.attributions.scores,
        torch.stack([outputs.start_logits[0, start], outputs.end_logits[0, end]]),
    )


@pytest.mark.parametrize("method", [IntegratedGradients, KernelShap])
def test_qa_equals_pipeline_on_pair(qa, method):
    model, tokenizer = qa
    kwargs = {"n_perturbations": 8, "progress": False}
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=method, **kwargs)
    result = explainer(QUESTION, CONTEXT)
    direct = method(model, tokenizer, **kwargs)((QUESTION, CONTEXT))[0]
    assert isinstance(make_task(model, tokenizer), QuestionAnsweringTask)
    assert direct.text == QUESTION + "\n" + CONTEXT and direct.task == "question_answering"
    assert direct.targets == [explainer.start_index, explainer.end_index]
    torch.testing.assert_close(torch.tensor([s for _, s in result["start"]]), direct.attributions[0])
    torch.testing.assert_close(torch.tensor([s for _, s in result["end"]]), direct.attributions[1])


def test_qa_explicit_span_target(qa):
    model, tokenizer = qa
    output = Occlusion(model, tokenizer, progress=False)((QUESTION, CONTEXT), (6, 8))[0]
    assert output.targets == [6, 8]
    with pytest.raises(IndexError, match="out of range"):
        Occlusion(model, tokenizer, progress=False)((QUESTION, CONTEXT), (6, 99))


def test_qa_bad_inputs_name_the_argument(qa):
    model, tokenizer = qa
    explainer = QuestionAnsweringExplainer(model, tokenizer, method=Occlusion, progress=False)
    with pytest.raises(ValueError, match="question"):
        explainer("  ", CONTEXT)
    with pytest.raises(ValueError, match="context"):
        explainer(QUESTION, "")
    with pytest.raises(TypeError, match="context"):
        explainer(QUESTION, None)
    with pytest.raises(RuntimeError, match="call the explainer"):
        explainer.visualize()
    with pytest.raises(TypeError, match="question"):
        Occlusion(model, tokenizer, progress=False)("a single text")


def test_qa_leaves_model_and_tokenizer_unchanged_and_visualizes(qa, tmp_path):
    model, tokenizer = copy.deepcopy(qa[0]), qa[1]
    model.train()
    before = snapshot(model, tokenizer)
    explainer = QuestionAnsweringExplainer(model, tokenizer, n_perturbations=8, progress=False)
    explainer(QUESTION, "the <b>cat</b> sat")
    with pytest.raises(ValueError):
        explainer(QUESTION, " ")
    assert_unchanged(before, snapshot(model, tokenizer))
    page = explainer.visualize(tmp_path / "qa.html")
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert (tmp_path / "qa.html").read_text(encoding="utf-8") == page
