"""Streaming methods never gather a shard folder into memory: they fit with `ActivationData.tensor` disabled."""

from __future__ import annotations

import pytest
import torch

from interpreto.concepts import (
    ActivationData,
    BatchTopKSAEConcepts,
    JumpReLUSAEConcepts,
    KMeansConcepts,
    PCAConcepts,
    TopKSAEConcepts,
    VanillaSAEConcepts,
)
from interpreto.model.activations import Activations, save_shard

STREAMING = [
    lambda: TopKSAEConcepts(None, 16, top_k=2),
    lambda: BatchTopKSAEConcepts(None, 16, top_k=2),
    lambda: JumpReLUSAEConcepts(None, 16),
    lambda: VanillaSAEConcepts(None, 16),
    lambda: PCAConcepts(None, 4),
    lambda: KMeansConcepts(None, 4),
]


@pytest.fixture(scope="module")
def shard_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    generator = torch.Generator().manual_seed(0)
    for k in range(3):
        rows = torch.randn(200, 8, generator=generator)
        save_shard(folder, k, Activations(rows, [(k * 200 + i, 0, "") for i in range(200)], "layer", "token"))
    return folder


@pytest.mark.parametrize("make", STREAMING)
def test_streaming_methods_fit_a_shard_folder_without_loading_it_whole(make, shard_folder, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("ActivationData.tensor() gathered the whole shard folder")

    monkeypatch.setattr(ActivationData, "tensor", refuse)
    explainer = make()
    kwargs = {"progress": False, "nb_epochs": 1} if "SAE" in type(explainer).__name__ else {}
    explainer.fit(shard_folder, **kwargs)
    codes = explainer.encode(torch.randn(5, 8))
    assert codes.shape == (5, explainer.nb_concepts) and torch.isfinite(codes).all()
    assert explainer.fitted_split_point == "layer"
