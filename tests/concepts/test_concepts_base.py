"""The concept explainer base: fitted checks, save/load of every family, errors that name the fix, the split
model left untouched, `ActivationData` on tensors, dicts and shard folders, and the memory cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interpreto.concepts import (
    ActivationData,
    ConvexNMFConcepts,
    ICAConcepts,
    KMeansConcepts,
    NeuronsAsConcepts,
    NMFConcepts,
    NotFittedError,
    PCAConcepts,
    SemiNMFConcepts,
    SVDConcepts,
    load_concepts,
)
from interpreto.model.activations import Activations, save_shard
from tests.tolerance import assert_close_to_scale

SPLIT = "layer.0"
FAMILIES = {
    "neurons": lambda: NeuronsAsConcepts(None),
    "nmf": lambda: NMFConcepts(None, nb_concepts=3, max_iter=50),
    "nmf_shift": lambda: NMFConcepts(None, nb_concepts=3, non_negative="shift", max_iter=50),
    "semi_nmf": lambda: SemiNMFConcepts(None, nb_concepts=3, max_iter=50, l1_penalty=0.01),
    "convex_nmf": lambda: ConvexNMFConcepts(None, nb_concepts=3, max_iter=50),
    "pca": lambda: PCAConcepts(None, nb_concepts=3),
    "ica": lambda: ICAConcepts(None, nb_concepts=3),
    "svd": lambda: SVDConcepts(None, nb_concepts=3),
    "kmeans": lambda: KMeansConcepts(None, nb_concepts=3),
    "kmeans_soft": lambda: KMeansConcepts(None, nb_concepts=3, assignment="soft", temperature=2.0),
    "kmeans_hard": lambda: KMeansConcepts(None, nb_concepts=3, assignment="hard"),
}


def rows_for(name: str, n_rows: int = 60, dim: int = 6) -> torch.Tensor:
    rows = torch.rand(n_rows, dim, generator=torch.Generator().manual_seed(0))
    return rows if name in ("nmf",) else rows - 0.4


def write_shards(folder: Path, rows: torch.Tensor, shard_rows: int, split_point: str = SPLIT) -> Path:
    for shard, start in enumerate(range(0, rows.shape[0], shard_rows)):
        part = rows[start : start + shard_rows].contiguous()
        save_shard(
            folder,
            shard,
            Activations(part, [(start + i, 0, "t") for i in range(len(part))], split_point, "token"),
        )
    return folder


@pytest.mark.parametrize("name", FAMILIES)
def test_unfitted_explainer_says_to_fit(name):
    explainer = FAMILIES[name]()
    assert not explainer.is_fitted
    for use in (
        lambda: explainer.encode(torch.zeros(2, 6)),
        lambda: explainer.decode(torch.zeros(2, 3)),
        lambda: explainer.dictionary,
        lambda: explainer.save("unused"),
    ):
        with pytest.raises(NotFittedError, match=r"call \.fit\(activations\)"):
            use()


@pytest.mark.parametrize("name", FAMILIES)
def test_save_load_round_trip(name, tmp_path):
    rows = rows_for(name)
    explainer = FAMILIES[name]().fit(
        Activations(rows, [(i, 0, "t") for i in range(60)], SPLIT, "token"), progress=False
    )
    explainer.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["concepts.safetensors", "config.json"]  # no pickle
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["class"] == type(explainer).__name__ and config["split_point"] == SPLIT

    loaded = load_concepts(tmp_path)
    assert type(loaded) is type(explainer) and loaded.is_fitted
    assert loaded.get_params() == explainer.get_params()
    assert loaded.fitted_split_point == SPLIT and loaded.input_dim == 6
    # plain tensors and parameters only: no scikit-learn or overcomplete object survives the fit
    for value in [*vars(explainer).values(), *vars(loaded).values()]:
        assert not type(value).__module__.startswith(("sklearn", "overcomplete")), type(value)
    codes = explainer.encode(rows)
    # same tensors, same arithmetic; iterative encoders (NMF's 200 updates) may differ in the last bits between
    # calls when vectorized kernels see other memory alignments
    assert_close_to_scale(loaded.encode(rows), codes, fraction=1e-5)
    assert_close_to_scale(loaded.decode(codes), explainer.decode(codes), fraction=1e-5)
    assert torch.equal(loaded.dictionary, explainer.dictionary)


def test_errors_name_the_fix():
    rows = rows_for("pca")
    with pytest.raises(ValueError, match="nb_concepts must be a positive integer"):
        PCAConcepts(None, nb_concepts=0).fit(rows)
    with pytest.raises(TypeError, match=r"get_activations\(texts\)"):
        PCAConcepts(None, nb_concepts=2).fit(["a text", "another"])
    with pytest.raises(ValueError, match=r"nb_concepts <= 6"):
        PCAConcepts(None, nb_concepts=7).fit(rows)
    with pytest.raises(ValueError, match=r"nb_concepts <= 6"):
        ICAConcepts(None, nb_concepts=7).fit(rows)
    with pytest.raises(ValueError, match=r"solver='bad'.*\['mu', 'hals', 'pgd', 'anls'\]"):
        NMFConcepts(None, nb_concepts=2, solver="bad").fit(rows.abs())
    with pytest.raises(ValueError, match=r"assignment='nearest'.*'similarity', 'soft', 'hard'"):
        KMeansConcepts(None, nb_concepts=2, assignment="nearest").fit(rows)
    with pytest.raises(ValueError, match="temperature must be positive"):
        KMeansConcepts(None, nb_concepts=2, temperature=0.0).fit(rows)
    with pytest.raises(ValueError, match="NMFConcepts needs non-negative.*non_negative='shift'"):
        NMFConcepts(None, nb_concepts=2).fit(rows)

    fitted = PCAConcepts(None, nb_concepts=2).fit(
        Activations(rows, [(i, 0, "t") for i in range(60)], SPLIT, "token")
    )
    with pytest.raises(ValueError, match=f"fitted on 6 .*split point {SPLIT}"):
        fitted.encode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"shape \(rows, 2\).*output of encode"):
        fitted.decode(torch.zeros(2, 3))
    two = {name: Activations(rows, [(i, 0, "t") for i in range(60)], name, "token") for name in ("a", "b")}
    with pytest.raises(ValueError, match="pass split_point="):
        PCAConcepts(None, nb_concepts=2).fit(two)
    assert PCAConcepts(None, nb_concepts=2, split_point="b").fit(two).fitted_split_point == "b"


def test_split_model_is_untouched(tmp_path):
    from interpreto import ModelWithSplitPoints
    from interpreto.zoo import tiny_bert_classifier

    model, tokenizer = tiny_bert_classifier()
    model.train()  # a model handed in train mode stays in train mode
    parameters = {name: value.detach().clone() for name, value in model.state_dict().items()}
    vocabulary, padding_side = len(tokenizer), tokenizer.padding_side
    splitter = ModelWithSplitPoints(model, split_points=[1], tokenizer=tokenizer, progress=False)
    texts = ["a good movie", "a bad one", "fine"]

    activations = splitter.get_activations(texts)
    neurons = NeuronsAsConcepts(splitter).fit(activations)
    rows = activations[splitter.split_points[0]].activations
    assert neurons.fitted_split_point == "bert.encoder.layer.1" and neurons.nb_concepts == rows.shape[1]
    assert torch.equal(neurons.encode(rows), rows) and torch.equal(
        neurons.dictionary, torch.eye(rows.shape[1])
    )
    splitter.get_activations(texts, save_dir=tmp_path)
    streamed = PCAConcepts(splitter, nb_concepts=4).fit(tmp_path, progress=False)
    exact = PCAConcepts(splitter, nb_concepts=4).fit(activations)
    assert streamed.fitted_split_point == exact.fitted_split_point == "bert.encoder.layer.1"

    assert model.training and len(tokenizer) == vocabulary and tokenizer.padding_side == padding_side
    assert (
        model.get_input_embeddings().weight.shape[0]
        == parameters["bert.embeddings.word_embeddings.weight"].shape[0]
    )
    after = model.state_dict()
    assert after.keys() == parameters.keys()
    assert all(torch.equal(after[name], value) for name, value in parameters.items())


def test_activation_data_on_tensors_dicts_and_shard_folders(tmp_path):
    rows = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    from_tensor = ActivationData(rows)
    assert from_tensor.in_memory and (from_tensor.n_rows, from_tensor.dim) == (50, 4)
    assert torch.equal(from_tensor.tensor(), rows) and from_tensor.n_bytes == 50 * 4 * 4
    from_dict = ActivationData({SPLIT: Activations(rows, [(i, 0, "t") for i in range(50)], SPLIT, "token")})
    assert from_dict.split_point == SPLIT and torch.equal(from_dict.tensor(), rows)

    folder = write_shards(tmp_path, rows, shard_rows=20)  # 20 + 20 + 10 rows
    shards = ActivationData(folder)
    assert not shards.in_memory and (shards.n_rows, shards.dim, shards.split_point) == (50, 4, SPLIT)
    assert torch.equal(shards.tensor(), rows)
    assert shards.n_batches(8) == 3 + 3 + 2
    batches = list(shards.batches(8, torch.Generator().manual_seed(0)))
    assert len(batches) == 8 and max(len(b) for b in batches) == 8
    covered = torch.cat(batches)
    assert torch.equal(covered[covered[:, 0].argsort()], rows[rows[:, 0].argsort()])  # every row once
    again = torch.cat(list(shards.batches(8, torch.Generator().manual_seed(0))))
    assert torch.equal(again, covered) and not torch.equal(covered, rows)
    assert torch.equal(torch.cat(list(shards.batches(8, shuffle=False))), rows)

    with pytest.raises(ValueError, match="pass split_point="):
        ActivationData({"a": Activations(rows, [], "a", "token"), "b": Activations(rows, [], "b", "token")})
    with pytest.raises(FileNotFoundError, match="not a folder of activation shards"):
        ActivationData(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no shards.*get_activations\(\.\.\., save_dir="):
        ActivationData(tmp_path / "empty")
    with pytest.raises(ValueError, match="non-empty"):
        ActivationData(torch.zeros(0, 4))


def test_memory_cap_names_the_size_and_the_fix(tmp_path):
    rows = torch.rand(300, 16, generator=torch.Generator().manual_seed(2))
    folder = write_shards(tmp_path, rows, shard_rows=100)
    with pytest.raises(MemoryError, match=r"300 rows x 16 .* (GiB|MiB).*raise max_bytes="):
        ActivationData(folder).tensor(max_bytes=1000, method="NMFConcepts")
    for explainer in (
        NMFConcepts(None, 2),
        SemiNMFConcepts(None, 2),
        ICAConcepts(None, 2),
        SVDConcepts(None, 2),
    ):
        with pytest.raises(MemoryError, match=f"{type(explainer).__name__} fits in memory"):
            explainer.fit(folder, max_bytes=1000, progress=False)
    # the streaming families read one shard at a time and need no cap
    assert PCAConcepts(None, 2).fit(folder, progress=False).is_fitted
    assert KMeansConcepts(None, 2).fit(folder, progress=False).is_fitted
    assert NMFConcepts(None, 2, max_iter=20).fit(folder, max_bytes=300 * 16 * 4, progress=False).is_fitted
