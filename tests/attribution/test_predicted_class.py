"""A predicted-class target costs no extra forward for methods whose first model call scores the input."""

from __future__ import annotations

import pytest
import torch

from interpreto import InputXGradient, IntegratedGradients, Occlusion, Saliency
from tests.conftest import scaled_head


def _count_forwards(model):
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize(("method", "forwards"), [(Saliency, 1), (InputXGradient, 1), (Occlusion, 2)])
def test_predicted_class_read_from_the_first_model_call(bert, method, forwards):
    model, tokenizer = bert
    model = scaled_head(model)
    text = "the plot was thin but the cast was great"
    predicted = int(model(**tokenizer(text, return_tensors="pt")).logits.argmax())
    explicit = method(model, tokenizer, progress=False)(text, targets=predicted)[0]
    calls, handle = _count_forwards(model)
    try:
        out = method(model, tokenizer, progress=False)(text)[0]
    finally:
        handle.remove()
    assert len(calls) == forwards  # Occlusion: the input (predicted class) then one batch of perturbations
    assert out.targets == [predicted] and out.target_names == explicit.target_names
    torch.testing.assert_close(out.attributions, explicit.attributions)
    torch.testing.assert_close(out.scores, explicit.scores)


def test_path_methods_still_predict_from_the_input(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    texts = ["a fine film", "dull and long", "great cast"]
    predicted = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits.argmax(-1).tolist()
    outputs = IntegratedGradients(model, tokenizer, n_perturbations=8, progress=False)(texts)
    assert [out.targets[0] for out in outputs] == predicted
