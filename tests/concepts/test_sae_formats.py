"""Pretrained SAE folders: SAELens and sparsify layouts written by hand with known weights, encode and decode
checked against each library's formula, and `save_saelens` round trips."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from interpreto import ModelWithSplitPoints
from interpreto.concepts import (
    BatchTopKSAEConcepts,
    JumpReLUSAEConcepts,
    TopKSAEConcepts,
    VanillaSAEConcepts,
    load_concepts,
)
from interpreto.concepts.sae.formats import save_saelens
from interpreto.zoo import tiny_bert_classifier
from tests.tolerance import assert_close_to_scale

D_IN, D_SAE, K = 32, 64, 5


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(D_IN, D_SAE, generator=generator) / D_IN**0.5,
        "b_enc": 0.1 * torch.randn(D_SAE, generator=generator),
        "W_dec": torch.randn(D_SAE, D_IN, generator=generator) / D_IN**0.5,  # rows not unit norm
        "b_dec": torch.randn(D_IN, generator=generator),
        "threshold": 0.2 + 0.3 * torch.rand(D_SAE, generator=generator),
    }


def _rows(seed: int = 1) -> torch.Tensor:
    return torch.randn(40, D_IN, generator=torch.Generator().manual_seed(seed)) + 0.5


def _write(folder, cfg: dict, tensors: dict[str, torch.Tensor], weights_file: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({name: value.contiguous() for name, value in tensors.items()}, str(folder / weights_file))
    return folder


def _top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    top = values.topk(k, dim=1)
    return torch.zeros_like(values).scatter(1, top.indices, top.values)


def _check(explainer, rows, expected_codes, weights):
    codes = explainer.encode(rows)
    assert_close_to_scale(codes, expected_codes, fraction=1e-5)
    expected = expected_codes @ weights["W_dec"].double() + weights["b_dec"].double()
    assert_close_to_scale(explainer.decode(codes), expected, fraction=1e-5)


@pytest.mark.parametrize(
    "architecture, extra",
    [("standard", {}), ("topk", {"k": K}), ("topk", {"activation_fn_kwargs": {"k": K}}), ("jumprelu", {})],
)
def test_saelens_folder_encodes_with_saelens_formula(tmp_path, architecture, extra):
    weights = _weights()
    tensors = {
        name: value for name, value in weights.items() if name != "threshold" or architecture == "jumprelu"
    }
    cfg = {
        "architecture": architecture,
        "d_in": D_IN,
        "d_sae": D_SAE,
        "hook_name": "blocks.3.hook_resid_post",
    }
    folder = _write(tmp_path / "sae", {**cfg, **extra}, tensors, "sae_weights.safetensors")
    explainer = load_concepts(folder)
    w = {name: value.double() for name, value in weights.items()}
    rows = _rows()
    pre = (rows.double() - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    expected = {
        "standard": torch.relu(pre),
        "topk": _top_k(torch.relu(pre), K),
        "jumprelu": torch.relu(pre) * (pre > w["threshold"]),
    }[architecture]
    classes = {"standard": VanillaSAEConcepts, "topk": TopKSAEConcepts, "jumprelu": JumpReLUSAEConcepts}
    assert type(explainer) is classes[architecture]
    assert explainer.fitted_split_point == "blocks.3.hook_resid_post" and explainer.nb_concepts == D_SAE
    _check(explainer, rows, expected, weights)
    assert 0 < float((expected > 0).float().mean()) < 1  # the formula's branches are exercised
    assert torch.equal(explainer.dictionary, weights["W_dec"])


def test_saelens_without_b_dec_on_input_and_half_precision(tmp_path):
    weights = _weights(2)
    tensors = {name: weights[name].half() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": False}
    cfg["meta"] = {"hook_name": "blocks.0.hook_resid_pre"}  # SAELens 6 keeps hook_name in meta
    explainer = load_concepts(_write(tmp_path / "sae", cfg, tensors, "sae_weights.safetensors"))
    w = {name: value.double() for name, value in tensors.items()}
    rows = _rows()
    _check(explainer, rows, torch.relu(rows.double() @ w["W_enc"] + w["b_enc"]), tensors)
    assert explainer.fitted_split_point == "blocks.0.hook_resid_pre"


@pytest.mark.parametrize(
    "sizes", [{"num_latents": D_SAE, "d_in": D_IN}, {"num_latents": 0, "expansion_factor": 2}]
)
def test_sparsify_folder_encodes_with_sparsify_formula(tmp_path, sizes):
    weights = _weights(3)
    tensors = {
        "encoder.weight": weights["W_enc"].T.contiguous(),
        "encoder.bias": weights["b_enc"],
        "W_dec": weights["W_dec"],
        "b_dec": weights["b_dec"],
    }
    cfg = {"activation": "topk", "k": K, "normalize_decoder": True, "multi_topk": False, **sizes}
    explainer = load_concepts(_write(tmp_path / "layers.1", cfg, tensors, "sae.safetensors"))
    w = {name: value.double() for name, value in tensors.items()}
    rows = _rows()
    expected = _top_k(torch.relu((rows.double() - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"]), K)
    assert type(explainer) is TopKSAEConcepts and explainer.top_k == K
    assert explainer.fitted_split_point == "layers.1"
    _check(explainer, rows, expected, weights)


def test_saved_names_map_to_the_split_model(tmp_path):
    model, tokenizer = tiny_bert_classifier()
    splitter = ModelWithSplitPoints(model, split_points=[0, 1], tokenizer=tokenizer, progress=False)
    weights = _weights()
    tensors = {name: weights[name] for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "hook_name": "blocks.1.hook_resid_pre"}
    folder = _write(tmp_path / "sae", cfg, tensors, "sae_weights.safetensors")
    assert load_concepts(folder, splitter).fitted_split_point == "bert.encoder.layer.0"  # block 1's input
    assert load_concepts(folder, splitter, split_point=1).fitted_split_point == "bert.encoder.layer.1"
    cfg["hook_name"] = "blocks.1.hook_attn_out"  # no module of the model: the error says to pass split_point=
    other = _write(tmp_path / "attn", cfg, tensors, "sae_weights.safetensors")
    with pytest.raises(ValueError, match="split_point="):
        load_concepts(other, splitter)
    assert (
        load_concepts(other).fitted_split_point == "blocks.1.hook_attn_out"
    )  # kept as saved without a model
    sparsify = {"encoder.weight": weights["W_enc"].T.contiguous(), "encoder.bias": weights["b_enc"]}
    sparsify |= {"W_dec": weights["W_dec"], "b_dec": weights["b_dec"]}
    cfg = {"k": K, "num_latents": D_SAE, "d_in": D_IN}
    loaded = load_concepts(_write(tmp_path / "layers.1", cfg, sparsify, "sae.safetensors"), splitter)
    assert loaded.fitted_split_point == "bert.encoder.layer.1"


@pytest.mark.parametrize(
    "make, architecture, loaded_class",
    [
        (lambda: VanillaSAEConcepts(None, 16), "standard", VanillaSAEConcepts),
        (lambda: TopKSAEConcepts(None, 16, top_k=3), "topk", TopKSAEConcepts),
        (lambda: JumpReLUSAEConcepts(None, 16), "jumprelu", JumpReLUSAEConcepts),
        (lambda: BatchTopKSAEConcepts(None, 16, top_k=3), "jumprelu", JumpReLUSAEConcepts),
    ],
)
def test_save_saelens_round_trip(tmp_path, make, architecture, loaded_class):
    rows = _rows()[:, :8]
    explainer = make().fit(rows, nb_epochs=3, batch_size=16, progress=False)
    folder = save_saelens(explainer, tmp_path / "saelens")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == architecture and (cfg["d_in"], cfg["d_sae"]) == (8, 16)
    assert cfg.get("k") == getattr(explainer, "top_k", None) if architecture == "topk" else "k" not in cfg
    loaded = load_concepts(folder)
    assert type(loaded) is loaded_class
    assert torch.equal(loaded.encode(rows), explainer.encode(rows))
    assert torch.equal(loaded.decode(loaded.encode(rows)), explainer.reconstruct(rows))


@pytest.mark.parametrize(
    "cfg, weights_file, message",
    [
        ({"architecture": "gated", "d_in": D_IN, "d_sae": D_SAE}, "sae_weights.safetensors", "gated"),
        (
            {"architecture": "standard", "normalize_activations": "layer_norm"},
            "sae_weights.safetensors",
            "layer_norm",
        ),
        ({"architecture": "standard", "d_in": D_IN + 1, "d_sae": D_SAE}, "sae_weights.safetensors", "d_in"),
        ({"k": K, "num_latents": D_SAE, "transcode": True}, "sae.safetensors", "transcode"),
    ],
)
def test_unsupported_folders_say_why(tmp_path, cfg, weights_file, message):
    weights = _weights()
    if weights_file == "sae.safetensors":
        weights = {"encoder.weight": weights["W_enc"].T.contiguous(), "encoder.bias": weights["b_enc"]} | {
            name: weights[name] for name in ("W_dec", "b_dec")
        }
    with pytest.raises(ValueError, match=message):
        load_concepts(_write(tmp_path / "sae", cfg, weights, weights_file))


def test_folder_without_weights_raises(tmp_path):
    (tmp_path / "cfg.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="sae_weights.safetensors"):
        load_concepts(tmp_path)
