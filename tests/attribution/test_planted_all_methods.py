"""Planted truth for every method: the element that decides the answer gets the top score.

Classification: the planted-marker classifier (the label is decided by one marker word). Generation: the
copy-task LM (the answer is the one capital letter of the prompt). Where a method misses on a model family for
a known reason, the test states the measured rate instead of hiding it.
"""

from __future__ import annotations

import pytest
import torch

from interpreto import (
    InputXGradient,
    Occlusion,
    Saliency,
    SmoothGrad,
    Sobol,
    SquareGrad,
    VarGrad,
)
from tests.conftest import ALL_METHODS

SMALL = {"n_perturbations": 64}  # a fast budget for the sampling methods


def _make(method, model, tokenizer):
    kwargs = {} if method in (Saliency, InputXGradient, Occlusion) else dict(SMALL)
    if method is Sobol:
        kwargs = {}  # Sobol picks its own row count (enough distinct design columns)
    return method(model, tokenizer, progress=False, **kwargs)


@pytest.fixture(scope="module")
def copy_lm():
    from interpreto.zoo import copy_task_lm

    return copy_task_lm(seed=0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_marker_word_top_on_planted_classifier(planted, method):
    from interpreto.zoo import planted_sentences

    model, tokenizer = planted
    rows = planted_sentences(20, seed=321)
    outputs = _make(method, model, tokenizer)([text for text, _, _ in rows])
    hits = sum(
        int(out.attributions[0].argmax()) == index for out, (_, _, index) in zip(outputs, rows, strict=True)
    )
    assert hits == len(rows), f"{method.__name__}: marker on top in {hits}/{len(rows)}"


# The x . grad family misses on this RMSNorm Llama: on 40 prompts (seed 321) the source is on top for
# InputXGradient 8/40, SmoothGrad 8/40, SquareGrad 0/40, VarGrad 0/40 (top-3: 12, 11, 28, 31). x . grad is a
# first-order estimate from the origin, far from this model's operating region; IG, GradientShap and the
# perturbation methods integrate or perturb along the way and find it (docs: attribution methods table).
X_GRAD_FAMILY = (InputXGradient, SmoothGrad, SquareGrad, VarGrad)


@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m not in X_GRAD_FAMILY])
def test_source_word_top_on_copy_task_lm(copy_lm, method):
    from interpreto.zoo import copy_task_prompts

    model, tokenizer = copy_lm
    rows = copy_task_prompts(10, seed=321)
    explainer = _make(method, model, tokenizer)
    hits = 0
    for prompt, continuation, source in rows:
        out = explainer(prompt, continuation)[0]
        row = out.attributions[0, : out.n_prompt_elements]
        hits += int(torch.nan_to_num(row, nan=-float("inf")).argmax()) == source
    assert hits >= 9, f"{method.__name__}: source on top in {hits}/10"
