"""Saved explanations: versioned JSON (optionally gzip), exact round trip, small files, never pickle."""

from __future__ import annotations

import gzip
import json
import math

import pytest
import torch

from interpreto import AttributionOutput, IntegratedGradients, Occlusion, load_explanations, save_explanations


def test_round_trip_keeps_everything(bert, tmp_path):
    model, tokenizer = bert
    outputs = IntegratedGradients(model, tokenizer, n_perturbations=8, progress=False)(
        ["the movie was great", "awful film!"], targets=[[0, 1], 2]
    )
    path = tmp_path / "explanations.json"
    save_explanations(outputs, path)
    document = json.loads(path.read_text())
    assert document["format"] == "interpreto.attribution" and document["version"] == 1
    loaded = load_explanations(path)
    for original, copy in zip(outputs, loaded, strict=True):
        assert copy.elements == original.elements and copy.offsets == original.offsets
        assert copy.targets == original.targets and copy.target_names == original.target_names
        assert torch.equal(copy.attributions, original.attributions)
        assert torch.equal(copy.scores, original.scores)
        assert torch.equal(copy.convergence_delta, original.convergence_delta)
        assert copy.method == "IntegratedGradients" and copy.granularity == "word"


def test_generation_nan_round_trip_and_single_file(gpt2, tmp_path):
    model, tokenizer = gpt2
    out = Occlusion(model, tokenizer, progress=False)("the cat sat", " on the mat")[0]
    path = tmp_path / "one.json.gz"
    out.save(path)
    assert gzip.decompress(path.read_bytes())  # really gzip
    copy = AttributionOutput.load(path)
    assert torch.equal(torch.isnan(copy.attributions), torch.isnan(out.attributions))
    assert torch.equal(torch.nan_to_num(copy.attributions), torch.nan_to_num(out.attributions))
    assert copy.task == "generation" and copy.n_prompt_elements == out.n_prompt_elements


def test_500_explanations_stay_small(tmp_path):
    generator = torch.Generator().manual_seed(0)
    outputs = [
        AttributionOutput(
            text=" ".join(f"word{i}" for i in range(40)),
            elements=[f"word{i}" for i in range(40)],
            attributions=torch.randn(2, 40, generator=generator),
            targets=[0, 1],
            target_names=["negative", "positive"],
            scores=torch.randn(2, generator=generator),
            offsets=[(6 * i, 6 * i + 5) for i in range(40)],
        )
        for _ in range(500)
    ]
    plain, packed = tmp_path / "many.json", tmp_path / "many.json.gz"
    save_explanations(outputs, plain)
    save_explanations(outputs, packed)
    assert plain.stat().st_size < 3_000_000
    assert packed.stat().st_size < 1_500_000
    assert len(load_explanations(packed)) == 500


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an interpreto attribution file"):
        load_explanations(path)
    path.write_text(json.dumps({"format": "interpreto.attribution", "version": 99, "explanations": []}))
    with pytest.raises(ValueError, match="upgrade interpreto"):
        load_explanations(path)


def test_top_skips_nan():
    out = AttributionOutput(
        text="a b c",
        elements=["a", "b", "c"],
        attributions=torch.tensor([[0.1, math.nan, 0.5]]),
        targets=[0],
        target_names=["x"],
        scores=torch.zeros(1),
    )
    assert [element for element, _ in out.top(2)] == ["c", "a"]
