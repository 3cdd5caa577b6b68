"""The `interpreto explain` command: same numbers as the library, a page written, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from interpreto import IntegratedGradients, Occlusion
from interpreto.cli import main, render


@pytest.fixture()
def saved_classifier(tmp_path, planted):
    model, tokenizer = planted
    model.save_pretrained(tmp_path / "clf")
    tokenizer.save_pretrained(tmp_path / "clf")
    return tmp_path / "clf"


def test_explain_classifier_prints_elements_and_writes_html(saved_classifier, tmp_path, capsys, planted):
    page = tmp_path / "out.html"
    status = main(
        ["explain", str(saved_classifier), "the great movie", "--method", "occlusion", "--html", str(page)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    model, tokenizer = planted
    expected = Occlusion(model, tokenizer, progress=False)("the great movie")[0]
    assert render(expected, color=False) in printed
    assert "great[+" in printed and page.read_text().startswith("<!DOCTYPE html>")


def test_explain_generation_with_a_target(tmp_path, gpt2, capsys):
    model, tokenizer = gpt2
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    status = main(["explain", str(tmp_path / "lm"), "the cat sat", "--target", " on", "--granularity", "token",
                   "--method", "ig", "--n-perturbations", "8"])  # fmt: skip
    assert status == 0
    expected = IntegratedGradients(model, tokenizer, n_perturbations=8, granularity="token", progress=False)(
        "the cat sat", " on"
    )[0]
    assert capsys.readouterr().out.strip() == render(expected, color=False)


def test_color_rendering_is_signed():
    from interpreto import AttributionOutput

    out = AttributionOutput(text="a b", elements=["a", "b"], attributions=torch.tensor([[1.0, -1.0]]),
                            targets=[0], target_names=["x"], scores=torch.zeros(1))  # fmt: skip
    line = render(out, color=True)
    assert "\x1b[48;2;255;75;75m\x1b[38;2;0;0;0ma" in line and "\x1b[48;2;75;75;255m" in line


def test_bad_label_is_a_clear_error(saved_classifier, capsys):
    assert main(["explain", str(saved_classifier), "the movie", "--target", "happy"]) == 2
    assert "unknown label 'happy'" in capsys.readouterr().err


def test_help_documents_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "interpreto.cli", "explain", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--method" in result.stdout and "--html" in result.stdout and "MODEL" in result.stdout.upper()
