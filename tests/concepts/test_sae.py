"""SAE explainers: planted-truth recovery, sparsity, training history, streaming, seeds, save/load, errors."""

from __future__ import annotations

import math

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import (
    BatchTopKSAEConcepts,
    JumpReLUSAEConcepts,
    NotFittedError,
    TopKSAEConcepts,
    VanillaSAEConcepts,
    load_concepts,
)
from interpreto.concepts.sae.base import _EpochStats, auxk_loss, lr_schedule
from interpreto.model.activations import Activations, save_shard
from interpreto.zoo import tiny_bert_classifier
from tests.concepts.planted import matched_cosine, planted_activations
from tests.tolerance import assert_close_to_scale

N_ATOMS, DIM, ACTIVE, NB_CONCEPTS = 16, 32, 4, 32
FIT = {"nb_epochs": 15, "batch_size": 256, "lr": 3e-2, "progress": False}
METHODS = {
    "topk": lambda: TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE),
    "batch_topk": lambda: BatchTopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE),
    "jump_relu": lambda: JumpReLUSAEConcepts(None, NB_CONCEPTS, sparsity_coefficient=3e-2),
    "vanilla": lambda: VanillaSAEConcepts(None, NB_CONCEPTS, l1_coefficient=0.03),
}


@pytest.fixture(scope="module")
def planted():
    return planted_activations(4000, N_ATOMS, DIM, active=ACTIVE, noise=0.02, seed=0)


@pytest.fixture(scope="module")
def fitted(planted):
    """Each method fitted once on the planted rows (shared by the tests that only read it)."""
    rows = planted[0]
    return {name: make().fit(rows, **FIT) for name, make in METHODS.items()}


def _l0(codes: torch.Tensor) -> torch.Tensor:
    return (codes != 0).sum(dim=1).float()


@pytest.mark.parametrize("name", ["topk", "batch_topk", "jump_relu", "vanilla"])
def test_sae_recovers_planted_atoms(fitted, planted, name):
    rows, _, atoms = planted
    explainer = fitted[name]
    cosine, per_atom = matched_cosine(explainer.dictionary, atoms)
    l0 = float(_l0(explainer.encode(rows)).mean())
    print(f"{name}: matched |cos| mean {cosine:.3f} min {per_atom.min():.3f}, L0 {l0:.2f} (truth {ACTIVE})")
    # measured: topk 0.988, batch_topk 0.988, jump_relu 0.984 (L0 4.00), vanilla 0.951 (L0 4.37)
    assert cosine >= 0.9
    assert ACTIVE / 2 <= l0 <= 2 * ACTIVE
    assert torch.allclose(explainer.dictionary.norm(dim=1), torch.ones(NB_CONCEPTS), atol=1e-5)


def test_topk_l0_is_exactly_k(fitted, planted):
    codes = fitted["topk"].encode(planted[0])
    assert torch.equal(_l0(codes), torch.full((len(codes),), float(ACTIVE)))


def test_history_per_epoch_and_loss_decreases(fitted):
    for name, explainer in fitted.items():
        history = explainer.history_
        assert set(history) == {"loss", "explained_variance", "l0", "dead_fraction"}
        assert all(len(values) == FIT["nb_epochs"] for values in history.values()), name
        assert history["loss"][-1] < 0.75 * history["loss"][0], name  # vanilla: 0.60 -> 0.35 (L1 included)
        assert history["explained_variance"][-1] > 0.9, name
        assert all(0 <= value <= 1 for value in history["dead_fraction"]), name
    assert fitted["topk"].history_["l0"] == [float(ACTIVE)] * FIT["nb_epochs"]


def test_epoch_stats_explained_variance_is_per_dimension_mean():
    generator = torch.Generator().manual_seed(1)
    rows = 5 + torch.randn(300, 6, generator=generator) * torch.arange(1, 7)
    rebuilt = rows + 0.3 * torch.randn(300, 6, generator=generator)
    codes = torch.randn(300, 10, generator=generator).clamp_min(0)
    stats = _EpochStats(6, torch.device("cpu"))
    for start in range(0, 300, 64):
        part = slice(start, start + 64)
        stats.add(rows[part], rebuilt[part], codes[part], torch.tensor(1.0))
    result = stats.result(torch.zeros(10, dtype=torch.bool))
    rows64, rebuilt64 = rows.double(), rebuilt.double()
    expected = 1 - (rows64 - rebuilt64).square().sum() / (rows64 - rows64.mean(dim=0)).square().sum()
    assert result["explained_variance"] == pytest.approx(float(expected), rel=1e-9)
    assert result["l0"] == pytest.approx(float((codes > 0).sum(dim=1).double().mean()))
    # a per-dimension mean predictor explains nothing
    mean_stats = _EpochStats(6, torch.device("cpu"))
    mean_stats.add(rows, rows.mean(dim=0).expand_as(rows), codes, torch.tensor(1.0))
    assert abs(mean_stats.result(torch.zeros(10, dtype=torch.bool))["explained_variance"]) < 1e-9


def test_lr_schedule_warms_up_then_decays_per_step():
    factor = lr_schedule(200)
    values = [factor(step) for step in range(200)]
    assert values[:10] == pytest.approx([(step + 1) / 10 for step in range(10)])  # 5% warm-up
    assert values[199] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))


def test_vanilla_l1_penalty_is_mean_over_rows_of_row_l1():
    explainer = VanillaSAEConcepts(None, 4, l1_coefficient=0.5)
    codes = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    penalty = explainer._sparsity_loss(None, None, None, codes, None, None)
    assert float(penalty) == pytest.approx(0.5 * (3.0 + 3.0) / 2)
    doubled = explainer._sparsity_loss(None, None, None, torch.cat([codes, codes]), None, None)
    assert float(doubled) == pytest.approx(float(penalty))  # a larger batch is not penalised more


def test_jump_relu_l0_penalty_counts_active_and_raises_thresholds():
    explainer = JumpReLUSAEConcepts(None, 6, sparsity_coefficient=0.1, bandwidth=0.5, initial_threshold=0.2)
    module = explainer._new_module(4, torch.Generator().manual_seed(0))
    module.train()
    rows = torch.randn(40, 4, generator=torch.Generator().manual_seed(4))
    pre, codes, rebuilt = module(rows)
    penalty = explainer._sparsity_loss(module, rows, pre, codes, rebuilt, None)
    # the value is the exact L0: 0.1 x mean over rows of the concepts above their threshold
    assert penalty.item() == pytest.approx(0.1 * float((pre > 0.2).sum(dim=1).float().mean()), rel=1e-6)
    (grad,) = torch.autograd.grad(penalty, module.sae.thresholds)
    assert (grad <= 0).all() and (grad < 0).any()  # gradient descent raises the thresholds: fewer active


def test_auxk_loss_trains_only_dead_latents():
    explainer = TopKSAEConcepts(None, 6, top_k=1)
    module = explainer._new_module(4, torch.Generator().manual_seed(0))
    module.train()
    rows = torch.randn(32, 4, generator=torch.Generator().manual_seed(2))
    pre, codes, rebuilt = module(rows)
    nobody = torch.zeros(6, dtype=torch.bool)
    assert auxk_loss(module, rows, pre, rebuilt, nobody) == 0.0
    dead = torch.tensor([False, True, False, True, False, False])
    loss = auxk_loss(module, rows, pre, rebuilt, dead)
    assert loss.item() > 0
    (grad,) = torch.autograd.grad(loss, module.encoder_linear.weight)
    assert grad[dead].abs().sum() > 0 and grad[~dead].abs().sum() == 0


@pytest.mark.parametrize("name", ["topk", "batch_topk", "jump_relu", "vanilla"])
def test_saved_tensors_fold_the_training_scale(name):
    """The trained module works on rows / s; the exported tensors must give s x its codes on raw rows."""
    explainer = METHODS[name]()
    module = explainer._new_module(8, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        module.scale.fill_(7.0)
        module.b_dec.copy_(torch.randn(8, generator=generator))
        module.encoder_linear.bias.copy_(0.3 * torch.randn(NB_CONCEPTS, generator=generator))
    rows = 7.0 * torch.randn(50, 8, generator=generator)
    if name == "batch_topk":  # set the running threshold on other rows (on these, one code equals it)
        module.train()
        explainer._before_step(module.sae, 50)
        module(torch.randn(50, 8, generator=generator))
    module.eval()
    explainer.weights_ = explainer._export(module)
    explainer.is_fitted, explainer.input_dim = True, 8
    with torch.no_grad():
        _, codes, rebuilt = module(rows / module.scale)
    assert_close_to_scale(explainer.encode(rows), 7.0 * codes, fraction=1e-5)
    assert_close_to_scale(explainer.decode(explainer.encode(rows)), 7.0 * rebuilt, fraction=1e-5)


def test_fit_from_shard_folder_matches_in_memory(planted, tmp_path):
    rows = planted[0][:2000]
    index = [(i, 0, "x") for i in range(len(rows))]
    save_shard(tmp_path, 0, Activations(rows, index, "layer", "token"))
    fit = dict(FIT, nb_epochs=3)
    in_memory = TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE).fit(rows, **fit)
    streamed = TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE).fit(tmp_path, **fit)
    # one shard: the same row order, so the same steps
    assert_close_to_scale(streamed.dictionary, in_memory.dictionary, fraction=1e-5)
    assert streamed.history_["explained_variance"] == pytest.approx(in_memory.history_["explained_variance"])
    assert streamed.fitted_split_point == "layer"


def test_seed_reproducibility(planted):
    rows = planted[0][:1000]
    fit = dict(FIT, nb_epochs=2)
    first = TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE).fit(rows, seed=5, **fit)
    again = TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE).fit(rows, seed=5, **fit)
    other = TopKSAEConcepts(None, NB_CONCEPTS, top_k=ACTIVE).fit(rows, seed=6, **fit)
    assert torch.equal(first.dictionary, again.dictionary)
    assert (first.dictionary - other.dictionary).abs().max() > 0.1


def test_fit_leaves_global_rng_alone(planted):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TopKSAEConcepts(None, 8, top_k=2).fit(planted[0][:200], nb_epochs=1, progress=False)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["topk", "batch_topk", "jump_relu", "vanilla"])
def test_save_load_gives_identical_codes(fitted, planted, name, tmp_path):
    explainer = fitted[name]
    loaded = load_concepts(explainer.save(tmp_path / name))
    assert type(loaded) is type(explainer) and loaded.get_params() == explainer.get_params()
    rows = planted[0][:300]
    assert torch.equal(loaded.encode(rows), explainer.encode(rows))
    assert torch.equal(loaded.dictionary, explainer.dictionary)


def test_errors_before_fit_name_the_fix():
    explainer = TopKSAEConcepts(None, 8, top_k=2)
    for use in (lambda: explainer.encode(torch.ones(2, 4)), lambda: explainer.decode(torch.ones(2, 8))):
        with pytest.raises(NotFittedError, match=r"\.fit\(activations\)"):
            use()
    with pytest.raises(NotFittedError):
        explainer.dictionary  # noqa: B018


def test_encode_wrong_dimension_raises(fitted):
    with pytest.raises(ValueError, match=f"fitted on {DIM}"):
        fitted["topk"].encode(torch.ones(3, DIM + 1))


def test_bad_hyper_parameters_are_named():
    rows = torch.randn(64, 4)
    with pytest.raises(ValueError, match="top_k"):
        TopKSAEConcepts(None, 8, top_k=9).fit(rows, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        TopKSAEConcepts(None, 8, top_k=2).fit(rows, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="autocast"):
        TopKSAEConcepts(None, 8, top_k=2).fit(rows, autocast=True, progress=False)
    with pytest.raises(ValueError, match="sparsity_coefficient"):
        JumpReLUSAEConcepts(None, 8, sparsity_coefficient=-1.0).fit(rows, progress=False)


def test_user_model_unchanged_and_shards_stream(tmp_path):
    model, tokenizer = tiny_bert_classifier()
    model.train()
    model.classifier.weight.requires_grad_(False)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    modes = [module.training for module in model.modules()]
    grads = [parameter.requires_grad for parameter in model.parameters()]
    splitter = ModelWithSplitPoints(model, split_points=[1], tokenizer=tokenizer, progress=False)
    texts = [
        f"a {word} movie, truly {other} and long" for word in ("good", "bad", "fine") for other in "abcdefgh"
    ]
    activations = splitter.get_activations(texts)
    splitter.get_activations(texts, save_dir=tmp_path, shard_rows=64)  # several shards
    fit = dict(FIT, nb_epochs=20, batch_size=32)
    in_memory = TopKSAEConcepts(splitter, 16, top_k=4).fit(activations, **fit)
    streamed = TopKSAEConcepts(splitter, 16, top_k=4).fit(tmp_path, **fit)
    rows = activations["bert.encoder.layer.1"].activations
    streamed.decode(streamed.encode(rows))
    assert streamed.fitted_split_point == in_memory.fitted_split_point == "bert.encoder.layer.1"
    ev_memory, ev_streamed = (
        in_memory.history_["explained_variance"][-1],
        streamed.history_["explained_variance"][-1],
    )
    assert ev_streamed > 0.5 and abs(ev_streamed - ev_memory) < 0.1
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert [module.training for module in model.modules()] == modes
    assert [parameter.requires_grad for parameter in model.parameters()] == grads
    assert not math.isnan(ev_streamed)
