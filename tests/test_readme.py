"""The README's quick start runs as written, offline, and says what it claims."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory) -> dict:
    """Runs every python block of the README in order, in one namespace (as a reader pasting them would)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3, "the quick start shows a classifier, a language model and concepts"
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("readme"))
        for number, block in enumerate(blocks):
            exec(compile(block, f"README.md block {number}", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.mark.slow
def test_readme_classifier_explains_the_predicted_class_completely(quick_start):
    out = quick_start["out"]
    assert out.target_names == ["positive"]
    total = float(out.attributions.nansum())
    assert abs(float(out.convergence_delta[0])) <= 0.01 * abs(total)  # IG completeness, 1% of f(x) - f(b)
    assert {element for element, _ in out.top(2)} <= {"loved", "wonderful", "day"}


@pytest.mark.slow
def test_readme_contrastive_step_scores_every_prompt_word(quick_start):
    step = quick_start["step"]
    assert step.elements[-1] == " Paris"
    prompt_scores = step.attributions[0, :-1]
    assert torch.isfinite(prompt_scores).all() and math.isnan(float(step.attributions[0, -1]))
    assert step.elements[int(prompt_scores.argmax())] == "Eiffel"
    assert len(quick_start["generated"].target_names) >= 1


@pytest.mark.slow
def test_readme_concepts_reconstruct_and_are_sparse(quick_start):
    sae, activations = quick_start["sae"], quick_start["activations"]
    codes = quick_start["codes"]
    assert codes.shape[1] == 64 and int((codes > 0).sum(1).max()) <= 4  # TopK: at most k active per token
    assert 0.3 < quick_start["ExplainedVariance"]().compute(sae, activations).value <= 1.0
    assert len(quick_start["top"][quick_start["most_used"]]) == 5
