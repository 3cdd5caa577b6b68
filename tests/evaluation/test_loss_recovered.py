"""LossRecovered on tiny models: a perfect reconstruction recovers 1, the ablation itself 0 (exactly), special
tokens keep their clean states, the clean loss is the model's own next-token cross-entropy, and the model is
left as it was."""

from __future__ import annotations

import json

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import ConceptExplainer, NeuronsAsConcepts
from interpreto.evaluation import LossRecovered
from interpreto.zoo import tiny_bert_classifier, tiny_llama
from tests.tolerance import assert_close_to_scale

TEXTS = ["the dog runs home", "a cat", "birds sing in the morning light", "we read", "rain again today"]


class Constant(ConceptExplainer):
    """A stand-in explainer whose reconstruction is always `value` (zeros, or the mean activation)."""

    def __init__(self, value: torch.Tensor):
        super().__init__(None, 1)
        self.value = value

    def _fit(self, data, **kwargs):
        pass

    def _encode(self, rows):
        return torch.zeros(rows.shape[0], 1)

    def _decode(self, codes):
        return self.value.expand(codes.shape[0], -1).clone()


class CountingNeurons(NeuronsAsConcepts):
    """Neurons as concepts that count the rows they are asked to encode."""

    seen = 0

    def _encode(self, rows):
        CountingNeurons.seen += rows.shape[0]
        return rows.clone()


@pytest.fixture(scope="module")
def llama():
    model, tokenizer = tiny_llama(seed=0)
    splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, batch_size=2, progress=False)
    return model, tokenizer, splitter


def snapshot(model: torch.nn.Module) -> dict:
    return {
        "weights": {name: value.clone() for name, value in model.state_dict().items()},
        "training": [module.training for module in model.modules()],
        "hooks": [
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ],
        "attributes": [sorted(vars(module)) for module in model.modules()],
        "grad": [p.requires_grad for p in model.parameters()],
    }


def assert_unchanged(model: torch.nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"] and after["hooks"] == before["hooks"]
    assert after["attributes"] == before["attributes"] and after["grad"] == before["grad"]
    for name, value in before["weights"].items():
        assert torch.equal(after["weights"][name], value), name


def test_perfect_reconstruction_recovers_1_and_leaves_the_model_unchanged(llama):
    model, _, splitter = llama
    before = snapshot(model)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))
    result = LossRecovered(splitter).compute(neurons, TEXTS)
    assert result.value == 1.0 and result.details["loss_recovered_mean"] == 1.0
    assert result.details["delta_loss"] == 0.0 and result.details["kl_spliced"] == 0.0
    assert result.details["kl_score_zero"] == 1.0 and bool((result.per_row == 0).all())
    assert result.details["ce_zero"] != result.details["ce_clean"]  # a defined ratio (random model: any sign)
    assert result.details["task"] == "causal_lm" and result.higher_is_better
    assert json.dumps(result.to_dict())
    assert_unchanged(model, before)


def test_the_ablation_itself_recovers_0(llama):
    model, _, splitter = llama
    metric = LossRecovered(splitter, split_point=0)
    zero = Constant(torch.zeros(32)).fit(torch.zeros(2, 32))
    result = metric.compute(zero, TEXTS)
    assert result.value == 0.0 and result.details["kl_score_zero"] == 0.0
    assert result.details["ce_spliced"] == result.details["ce_zero"]
    mean = Constant(metric.mean_activation(TEXTS)).fit(torch.zeros(2, 32))
    by_mean = LossRecovered(splitter, ablation="mean").compute(mean, TEXTS)
    assert by_mean.value == 0.0 and by_mean.details["kl_score_mean"] == 0.0
    assert by_mean.details["ablation"] == "mean"


def test_clean_loss_is_the_next_token_cross_entropy_over_text_tokens_and_specials_are_untouched(llama):
    model, tokenizer, splitter = llama
    CountingNeurons.seen = 0
    neurons = CountingNeurons(splitter).fit(torch.zeros(2, 32))
    result = LossRecovered(splitter, split_point=0).compute(neurons, TEXTS)
    n_text = 0
    total = 0.0
    with torch.inference_mode():
        for text in TEXTS:  # one text at a time, unpadded: the model's own loss
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            assert ids[0, 0] == tokenizer.bos_token_id
            log_probs = model(input_ids=ids).logits[0, :-1].log_softmax(dim=-1)
            total -= float(log_probs.gather(1, ids[0, 1:, None]).sum())
            n_text += ids.shape[1] - 1
    assert result.details["n_targets"] == n_text
    assert_close_to_scale(result.details["ce_clean"], total / n_text, fraction=1e-5)
    assert CountingNeurons.seen == n_text  # every text token was spliced, never BOS nor padding


def test_loss_recovered_does_not_depend_on_the_batch_size(llama):
    _, _, splitter = llama
    pca_like = Constant(torch.full((32,), 0.1)).fit(torch.zeros(2, 32))
    one = LossRecovered(splitter, split_point=0, batch_size=1).compute(pca_like, TEXTS)
    five = LossRecovered(splitter, split_point=0, batch_size=5).compute(pca_like, TEXTS)
    for key in ("ce_clean", "ce_spliced", "ce_zero", "ce_mean", "kl_spliced"):
        assert_close_to_scale(one.details[key], five.details[key], fraction=1e-5, msg=key)
    assert_close_to_scale(one.per_row, five.per_row, scale=one.details["ce_clean"], fraction=1e-5)


def test_classifier_perfect_and_ablated():
    model, tokenizer = tiny_bert_classifier()
    splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False)
    neurons = NeuronsAsConcepts(splitter).fit(torch.zeros(2, 32))
    perfect = LossRecovered(splitter).compute(neurons, TEXTS)
    assert perfect.details["task"] == "classification" and perfect.details["n_targets"] == len(TEXTS)
    assert perfect.value == 1.0 and perfect.details["kl_spliced"] == 0.0
    zero = LossRecovered(splitter).compute(Constant(torch.zeros(32)).fit(torch.zeros(2, 32)), TEXTS)
    assert zero.value == 0.0 and zero.details["kl_score_zero"] == 0.0
    assert zero.details["ce_spliced"] == zero.details["ce_zero"] != zero.details["ce_clean"]


def test_loss_recovered_argument_errors(llama):
    _, _, splitter = llama
    neurons = NeuronsAsConcepts(splitter).fit(torch.zeros(2, 32))
    with pytest.raises(ValueError, match="ablation"):
        LossRecovered(splitter, ablation="resample").compute(neurons, TEXTS)
    with pytest.raises(TypeError, match="texts"):
        LossRecovered(splitter).compute(neurons, [])


def test_text_after_first_keeps_position_0_clean():
    """With positions="text_after_first" the zero ablation leaves position 0 (an LM's sink; with no BOS, the
    first text token) as it is: its cross-entropy is the one computed by hand with positions 1.. of the text
    zeroed, and the mean activation leaves position 0 out."""
    model, tokenizer = tiny_llama(seed=0, add_bos=False)
    splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, batch_size=2, progress=False)
    metric = LossRecovered(splitter, positions="text_after_first")
    hidden_size = model.config.hidden_size
    zero = Constant(torch.zeros(hidden_size)).fit(torch.zeros(2, hidden_size))
    result = metric.compute(zero, TEXTS)
    assert result.details["ce_spliced"] == pytest.approx(result.details["ce_zero"], rel=1e-6)
    total, count, rows = 0.0, 0, []
    for text in TEXTS:
        samples, batch = splitter.tokenize([text])
        edited = torch.tensor(samples[0].is_text)
        edited[0] = False
        captured = {}

        def zero_after_first(hidden, edited=edited, captured=captured):
            captured["h"] = hidden.clone()
            out = hidden.clone()
            out[0, edited] = 0.0
            return out

        with torch.no_grad():
            logits = splitter.intervene([text], 0, zero_after_first).logits[0, :-1].float()
        rows.append(captured["h"][0, edited])
        ids = batch["input_ids"][0, 1:]
        scored = torch.tensor(samples[0].is_text)[1:]
        losses = torch.nn.functional.cross_entropy(logits, ids, reduction="none")
        total += float(losses[scored].sum())
        count += int(scored.sum())
    assert_close_to_scale(result.details["ce_zero"], total / count, fraction=1e-4)
    expected_mean = torch.cat(rows).mean(dim=0)
    assert_close_to_scale(metric.mean_activation(TEXTS), expected_mean, fraction=1e-4)
    plain = LossRecovered(splitter).compute(zero, TEXTS)
    assert plain.details["ce_zero"] != pytest.approx(result.details["ce_zero"], rel=1e-3)


def test_unknown_positions_is_a_clear_error(llama):
    with pytest.raises(ValueError, match="positions="):
        LossRecovered(llama[2], positions="first")
