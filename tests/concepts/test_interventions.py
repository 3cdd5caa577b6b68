"""Interventions on concepts and steering: no-op edits change nothing bit for bit, edits equal hand-computed
hooks, a planted classifier head moves by the closed-form amount, steering emits a planted token, the user's
model is left as it was, and bad arguments name themselves."""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import NeuronsAsConcepts, PCAConcepts
from interpreto.concepts.interventions import intervene, steer
from interpreto.model._tracing import first_tensor, replace_first
from interpreto.zoo import tiny_bert_classifier, tiny_gpt2, tiny_llama
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale

TEXTS = ["a good movie", "bad", "The dog runs fast."]


def bert_splitter(split_point: int = 0, model=None, tokenizer=None) -> ModelWithSplitPoints:
    if model is None:
        model, tokenizer = tiny_bert_classifier()
    return ModelWithSplitPoints(model, split_points=split_point, tokenizer=tokenizer, progress=False)


def linear_explainer(splitter, components: torch.Tensor, mean: torch.Tensor | None = None) -> PCAConcepts:
    """A hand-built linear dictionary: `z = (a - mean) C^T`, `decode(z) = z C + mean`."""
    k, hidden = components.shape
    mean = torch.zeros(hidden) if mean is None else mean
    return PCAConcepts(splitter, nb_concepts=k).restore(
        {"split_point": splitter.split_points[0], "input_dim": hidden},
        {"mean": mean, "components": components.contiguous(), "explained_variance": torch.ones(k)},
    )


def orthonormal_rows(first: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """`k` orthonormal rows, the first along `first`."""
    extra = torch.randn(first.numel(), k - 1, generator=torch.Generator().manual_seed(seed))
    q, _ = torch.linalg.qr(torch.cat([first[:, None], extra], dim=1))
    return (q.T * torch.sign(q[:, 0] @ first)).contiguous()


def fitted_pca(splitter, k: int = 4) -> PCAConcepts:
    acts = splitter.get_activations(TEXTS + ["an unbelievable film", "the cat sat on the mat"])
    return PCAConcepts(splitter, nb_concepts=k).fit(acts, progress=False)


def hooked_logits(model, tokenizer, module, texts, edit, text_positions_only=True) -> torch.Tensor:
    """Logits with `edit(a) -> a'` applied by a plain forward hook to `module`'s output at the text positions
    (special tokens, position 0 and padding left out), the batch right-padded."""
    enc = tokenizer(texts, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    mask = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()
    mask[:, 0] = False

    def hook(_module, _args, output):
        hidden = first_tensor(output).clone()
        hidden[mask] = edit(hidden[mask])
        return replace_first(output, hidden)

    handle = module.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            return model(**{k: v for k, v in enc.items() if k != "special_tokens_mask"}).logits
    finally:
        handle.remove()


# ---- no-op interventions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "value"), [("scale", 1.0), ("add", 0.0)])
@pytest.mark.parametrize("positions", ["text", "all", [1, -1]])
def test_noop_intervention_changes_nothing_bit_for_bit(mode, value, positions):
    splitter = bert_splitter(0)
    explainer = fitted_pca(splitter)
    with torch.inference_mode():
        _, batch = splitter.tokenize(TEXTS)
        plain = splitter.model(**batch).logits
    edited = intervene(explainer, TEXTS, {0: value, 2: value}, mode=mode, positions=positions).logits
    assert torch.equal(edited, plain)


def test_setting_a_concept_to_its_current_value_changes_nothing():
    splitter = bert_splitter(0)
    explainer = fitted_pca(splitter)
    acts = splitter.get_activations("a good movie", granularity="all_tokens")[splitter.split_points[0]]
    current = float(explainer.encode(acts.activations[2:3])[0, 1])
    with torch.inference_mode():
        _, batch = splitter.tokenize("a good movie")
        plain = splitter.model(**batch).logits
    edited = intervene(explainer, "a good movie", {1: current}, mode="set", positions=[2]).logits
    assert torch.equal(edited, plain)


# ---- edits equal hand-computed hooks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "shift"),
    [
        ("set", 1.5, lambda z: 1.5 - z),  # a + (v - z_c) C_c
        ("scale", 3.0, lambda z: 2.0 * z),  # a + (3 z_c - z_c) C_c
        ("add", -2.0, lambda z: torch.full_like(z, -2.0)),  # a + v C_c
    ],
)
def test_edit_equals_hand_computed_linear_hook(mode, value, shift):
    model, tokenizer = tiny_bert_classifier()
    splitter = bert_splitter(0, model, tokenizer)
    explainer = fitted_pca(splitter)
    c, mean, components = 2, explainer.mean_, explainer.components_

    def edit(a):
        z_c = (a - mean) @ components[c]
        return a + shift(z_c)[:, None] * components[c]

    expected = hooked_logits(model, tokenizer, model.bert.encoder.layer[0], TEXTS, edit)
    actual = intervene(explainer, TEXTS, {c: value}, mode=mode).logits
    assert_close_to_scale(actual, expected)
    plain = hooked_logits(model, tokenizer, model.bert.encoder.layer[0], TEXTS, lambda a: a)
    assert (actual - plain).abs().max() > 1e-3  # the edit does move the logits


def test_without_error_the_hidden_state_is_the_decoded_edit():
    model, tokenizer = tiny_bert_classifier()
    splitter = bert_splitter(0, model, tokenizer)
    explainer = fitted_pca(splitter)  # 4 of 32 components: the reconstruction error is large
    mean, components = explainer.mean_, explainer.components_

    def edit(a):
        z = (a - mean) @ components.T
        z[:, 1] = -1.0
        return z @ components + mean

    expected = hooked_logits(model, tokenizer, model.bert.encoder.layer[0], TEXTS, edit)
    actual = intervene(explainer, TEXTS, {1: -1.0}, keep_error=False).logits
    assert_close_to_scale(actual, expected)
    kept = intervene(explainer, TEXTS, {1: -1.0}).logits
    assert (actual - kept).abs().max() > 1e-3


def test_list_positions_edit_only_those_tokens():
    model, tokenizer = tiny_bert_classifier()
    splitter = bert_splitter(0, model, tokenizer)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    lengths = enc["attention_mask"].sum(1)
    mask = torch.zeros_like(enc["attention_mask"], dtype=torch.bool)
    mask[:, 1] = True
    mask[torch.arange(len(TEXTS)), lengths - 1] = True  # -1: each text's last token ([SEP])

    def hook(_module, _args, output):
        hidden = first_tensor(output).clone()
        hidden[..., 5] = torch.where(mask, torch.tensor(4.0), hidden[..., 5])
        return replace_first(output, hidden)

    handle = model.bert.encoder.layer[0].register_forward_hook(hook)
    try:
        with torch.inference_mode():
            expected = model(**enc).logits
    finally:
        handle.remove()
    actual = intervene(neurons, TEXTS, {5: 4.0}, positions=[1, -1]).logits
    assert_close_to_scale(actual, expected)


# ---- planted classifier -------------------------------------------------------------------------------


def planted_head_classifier(direction: torch.Tensor, gain: float = 3.0):
    """tiny BERT whose logit 1 is `gain * tanh(u . h_CLS)` (u the unit `direction`, h_CLS the last layer's
    [CLS] state) and logit 0 is 0."""
    model, tokenizer = tiny_bert_classifier()
    hidden = direction.numel()
    with torch.no_grad():
        model.bert.pooler.dense.weight.zero_()
        model.bert.pooler.dense.weight[0] = direction / direction.norm()
        model.bert.pooler.dense.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.weight[1, 0] = gain
        model.classifier.bias.zero_()
    assert model.classifier.weight.shape == (2, hidden)
    return model, tokenizer


def test_clamping_the_planted_direction_sets_the_logit_in_closed_form():
    u = torch.randn(32, generator=torch.Generator().manual_seed(3))
    model, tokenizer = planted_head_classifier(u)
    splitter = bert_splitter(1, model, tokenizer)
    explainer = linear_explainer(splitter, orthonormal_rows(u, 4))
    with torch.inference_mode():
        _, batch = splitter.tokenize(TEXTS)
        plain = model(**batch).logits
    for value in (-2.0, 0.5, 1.5):
        out = intervene(explainer, TEXTS, {0: value}, positions=[0]).logits
        expected = torch.tensor([[0.0, 3.0 * float(torch.tanh(torch.tensor(value)))]]).expand(len(TEXTS), 2)
        assert_close_to_scale(out, expected)
    flipped = intervene(explainer, TEXTS, {0: -float(torch.sign(plain[0, 1])) * 2.0}, positions=[0]).logits
    assert torch.sign(flipped[0, 1]) == -torch.sign(plain[0, 1])
    # another (orthogonal) concept clamped at [CLS]: u . h_CLS is unchanged, so is the logit
    other = intervene(explainer, TEXTS, {2: 5.0}, positions=[0]).logits
    assert_close_to_scale(other, plain, scale=3.0)
    # the head reads [CLS] only: the text positions (special tokens left out) do not reach it at the last layer
    assert torch.equal(intervene(explainer, TEXTS, {0: 5.0}, positions="text").logits, plain)


def test_clamping_the_neuron_the_head_reads():
    e7 = torch.zeros(32)
    e7[7] = 1.0
    model, tokenizer = planted_head_classifier(e7, gain=2.0)
    splitter = bert_splitter(1, model, tokenizer)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))
    out = intervene(neurons, TEXTS, {7: -1.0}, positions="all").logits
    assert_close_to_scale(out[:, 1], torch.full((3,), 2.0 * float(torch.tanh(torch.tensor(-1.0)))))
    assert_close_to_scale(out[:, 0], torch.zeros(3), scale=1.0)


# ---- steering ------------------------------------------------------------------------------------------


def token_direction(model, token_id: int) -> torch.Tensor:
    """A direction that the final norm (unit weight, zero bias at init) and the LM head map to `token_id`:
    the centered unembedding row."""
    row = model.get_output_embeddings().weight[token_id].detach()
    direction = row - row.mean()
    logits = model.get_output_embeddings().weight.detach() @ direction
    assert int(logits.argmax()) == token_id  # planted: the token wins along its direction
    return direction


@pytest.mark.parametrize("builder", [tiny_gpt2, tiny_llama])
def test_steering_emits_the_planted_token(builder):
    model, tokenizer = builder()
    splitter = ModelWithSplitPoints(model, split_points=-1, tokenizer=tokenizer, progress=False)
    dog = tokenizer.encode(" dog", add_special_tokens=False)[-1]
    explainer = linear_explainer(splitter, orthonormal_rows(token_direction(model, dog), 4))
    prompts = ["The cat runs", "A big house is"]
    plain = steer(explainer, prompts, 0, 0.0, return_ids=True, max_new_tokens=5)
    assert all(dog not in ids for ids in plain)
    for mode in ("add", "set"):
        steered = steer(explainer, prompts, 0, 50.0, mode=mode, return_ids=True, max_new_tokens=5)
        assert steered == [[dog] * 5] * 2, mode
    texts = steer(explainer, prompts, 0, 50.0, max_new_tokens=3)
    assert texts == [" dog dog dog"] * 2
    # another concept pushed as hard does not emit it
    assert all(
        dog not in ids for ids in steer(explainer, prompts, 1, 50.0, return_ids=True, max_new_tokens=5)
    )


def test_steering_text_positions_skip_the_first_token():
    model, tokenizer = tiny_gpt2()  # no BOS: a one-token prompt has only position 0
    splitter = ModelWithSplitPoints(model, split_points=-1, tokenizer=tokenizer, progress=False)
    dog = tokenizer.encode(" dog", add_special_tokens=False)[-1]
    explainer = linear_explainer(splitter, orthonormal_rows(token_direction(model, dog), 4))
    plain = steer(explainer, "A", 0, 0.0, return_ids=True, max_new_tokens=4)[0]
    text = steer(explainer, "A", 0, 50.0, return_ids=True, max_new_tokens=4)[0]
    every = steer(explainer, "A", 0, 50.0, positions="all", return_ids=True, max_new_tokens=4)[0]
    assert text == plain[:1] + [dog] * 3  # the prompt pass was not edited, the generated tokens were
    assert every == [dog] * 4


@pytest.mark.parametrize("builder", [tiny_gpt2, tiny_llama])
def test_alpha_zero_generates_the_plain_ids(builder):
    model, tokenizer = builder()
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False, batch_size=2)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog"]))
    prompts = ["The dog", "A cat runs in the park", "Hello"]
    expected = []
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt")
        ids = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        expected.append(ids[0, enc["input_ids"].shape[1] :].tolist())
    assert steer(neurons, prompts, 3, 0.0, return_ids=True, max_new_tokens=6) == expected


def test_steering_stops_at_eos():
    model, tokenizer = tiny_gpt2()
    splitter = ModelWithSplitPoints(model, split_points=-1, tokenizer=tokenizer, progress=False)
    eos = tokenizer.eos_token_id
    explainer = linear_explainer(splitter, orthonormal_rows(token_direction(model, eos), 3))
    ids = steer(explainer, ["The cat runs", "A big house"], 0, 50.0, return_ids=True, max_new_tokens=5)
    assert ids == [[eos], [eos]]
    assert steer(explainer, ["The cat runs"], 0, 50.0, max_new_tokens=5) == [""]


# ---- the user's model -------------------------------------------------------------------------------------


class BrokenNeurons(NeuronsAsConcepts):
    def _encode(self, rows):
        raise RuntimeError("broken encoder")


def test_user_model_left_as_it_was_also_after_an_error():
    model, tokenizer = tiny_llama()
    model.train()
    model.model.layers[0].eval()
    model.lm_head.weight.requires_grad_(False)
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog"]))
    broken = BrokenNeurons(splitter).fit(splitter.get_activations(["The dog"]))
    model.generate(**tokenizer("The dog", return_tensors="pt"), max_new_tokens=2, do_sample=False)
    before = snapshot(model, tokenizer)
    intervene(neurons, ["The dog", "A cat"], {3: 2.0})
    steer(neurons, ["The dog", "A cat"], 3, 5.0, max_new_tokens=3)
    steer(neurons, ["The dog"], 3, 5.0, mode="set", max_new_tokens=3)
    assert_unchanged(before, snapshot(model, tokenizer))
    with pytest.raises(RuntimeError, match="broken encoder"):
        intervene(broken, ["The dog"], {3: 2.0})
    assert_unchanged(before, snapshot(model, tokenizer))
    with pytest.raises(RuntimeError, match="broken encoder"):
        steer(broken, ["The dog"], 3, 5.0, mode="set", max_new_tokens=3)
    assert_unchanged(before, snapshot(model, tokenizer))
    assert model.training and not model.model.layers[0].training


# ---- bad arguments ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def neurons():
    splitter = bert_splitter(0)
    return NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interventions": {32: 1.0}}, "interventions: concept 32 is unknown.*0 to 31"),
        ({"interventions": {-1: 1.0}}, "interventions: concept -1 is unknown"),
        ({"interventions": {"a": 1.0}}, "interventions: concept 'a' is unknown"),
        ({"interventions": {1: "big"}}, r"interventions\[1\] must be a finite number"),
        ({"interventions": {1: None}}, r"interventions\[1\] must be a finite number"),
        ({"interventions": {1: float("nan")}}, r"interventions\[1\] must be a finite number"),
        ({"interventions": [1, 2]}, "interventions must be a dict"),
        ({"mode": "clamp"}, "mode='clamp' is unknown"),
        ({"positions": "first"}, "positions='first' is unknown"),
        ({"positions": [50]}, r"positions: 50 is not a token index of inputs\[0\]"),
        ({"positions": []}, "positions must be"),
        ({"keep_error": "yes"}, "keep_error must be"),
    ],
)
def test_intervene_bad_arguments_name_themselves(neurons, kwargs, message):
    arguments = {"interventions": {1: 1.0}, **kwargs}
    with pytest.raises(ValueError, match=message):
        intervene(neurons, TEXTS, **arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concept": 32}, "concept: concept 32 is unknown"),
        ({"concept": 1.5}, "concept: concept 1.5 is unknown"),
        ({"alpha": "x"}, "alpha must be a finite number"),
        ({"alpha": float("inf")}, "alpha must be a finite number"),
        ({"mode": "scale"}, "mode='scale' is unknown"),
        ({"positions": [1]}, r"positions=\[1\] is unknown"),
        ({"normalize": 1}, "normalize must be"),
    ],
)
def test_steer_bad_arguments_name_themselves(kwargs, message):
    model, tokenizer = tiny_gpt2()
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog"]))
    arguments = {"concept": 1, "alpha": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        steer(neurons, ["The dog"], **arguments)


def test_explainer_without_model_or_fit_is_refused():
    alone = NeuronsAsConcepts(None).fit(torch.randn(4, 32))
    with pytest.raises(ValueError, match="explainer has no model_with_split_points"):
        intervene(alone, "a good movie", {0: 1.0})
    with pytest.raises(ValueError, match="explainer must be a ConceptExplainer"):
        steer(object(), "a", 0, 1.0)
    from interpreto.concepts import NotFittedError

    with pytest.raises(NotFittedError):
        intervene(PCAConcepts(bert_splitter(0), nb_concepts=2), "a good movie", {0: 1.0})
