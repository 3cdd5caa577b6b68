"""`ModelWithSplitPoints`: split point resolution, granularities, forward_from / intervene, side effects, files."""

from __future__ import annotations

import copy

import pytest
import torch

from interpreto import ActivationGranularity, ModelWithSplitPoints, load_activations
from interpreto.model.activations import iter_activation_shards
from tests.conftest import assert_unchanged, snapshot
from tests.model.architectures import tiny_model
from tests.tolerance import assert_close_to_scale

TEXTS = ["The dog runs. It is good!", "A cat, unbelievable.", "Hi"]


def splitter_for(name: str = "bert", head: bool = True, split_points=1, **kwargs) -> ModelWithSplitPoints:
    model, tokenizer = tiny_model(name, head)
    return ModelWithSplitPoints(
        model, split_points=split_points, tokenizer=tokenizer, progress=False, **kwargs
    )


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("bert", True, "bert.encoder.layer.1"),
        ("bert", False, "encoder.layer.1"),
        ("distilbert", True, "distilbert.transformer.layer.1"),
        ("gpt2", True, "transformer.h.1"),
        ("llama", True, "model.layers.1"),
        ("t5-encoder", False, "encoder.block.1"),
        ("albert", True, "albert.encoder.albert_layer_groups.0#1"),
    ],
)
def test_integer_split_point_resolves_to_the_block(name, head, expected):
    assert splitter_for(name, head, split_points=-1).split_points == [expected]


def test_split_points_sorted_in_forward_order_and_deduplicated():
    splitter = splitter_for(split_points=["bert.encoder.layer.1", 0, 1, "bert.encoder.layer.0.attention"])
    assert splitter.split_points == [
        "bert.encoder.layer.0.attention",
        "bert.encoder.layer.0",
        "bert.encoder.layer.1",
    ]


@pytest.mark.parametrize(
    ("split_points", "message"),
    [(2, "out of range"), (-3, "out of range"), ("bert.encoder.layer.7", "not a module"), ([], "empty")],
)
def test_bad_split_points_raise_naming_the_argument(split_points, message):
    with pytest.raises(ValueError, match=f"split_points.*{message}"):
        splitter_for(split_points=split_points)


def test_bad_arguments_raise_clear_errors():
    model, tokenizer = tiny_model("bert", True)
    with pytest.raises(TypeError, match="tokenizer"):
        ModelWithSplitPoints(model, split_points=0)
    with pytest.raises(ValueError, match="batch_size"):
        ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, batch_size=0)
    splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="granularity"):
        splitter.get_activations("a", granularity="paragraph")
    with pytest.raises(ValueError, match="pooling"):
        splitter.get_activations("a", granularity="sample", pooling="median")


def test_granularities_select_and_pool_the_right_tokens():
    splitter = splitter_for()
    acts = {
        g: splitter.get_activations(TEXTS, granularity=g)["bert.encoder.layer.1"]
        for g in ActivationGranularity
    }
    all_tokens = acts[ActivationGranularity.ALL_TOKENS]
    samples, _ = splitter.tokenize(TEXTS)
    assert len(all_tokens) == sum(len(sample.tokens) for sample in samples)  # no padding row
    # TOKEN drops [CLS] and [SEP]
    assert len(acts[ActivationGranularity.TOKEN]) == len(all_tokens) - 2 * len(TEXTS)
    words = acts[ActivationGranularity.WORD]
    assert [label for i, _, label in words.index if i == 1] == ["A", "cat", ",", "unbelievable", "."]
    # "unbelievable" is 3 tokens: its row is their mean
    first = all_tokens.for_input(1).activations
    assert_close_to_scale(words.for_input(1).activations[3], first[4:7].mean(dim=0), scale=first[4:7])
    assert [label for i, _, label in acts[ActivationGranularity.SENTENCE].index if i == 0] == [
        "The dog runs.",
        "It is good!",
    ]
    for k in range(len(TEXTS)):
        tokens = all_tokens.for_input(k).activations
        assert torch.equal(acts[ActivationGranularity.CLS_TOKEN].for_input(k).activations[0], tokens[0])
        assert_close_to_scale(
            acts[ActivationGranularity.SAMPLE].for_input(k).activations[0], tokens.mean(dim=0), scale=tokens
        )
    for pooling, reduce in (("max", lambda t: t.amax(dim=0)), ("last", lambda t: t[-1])):
        pooled = splitter.get_activations(TEXTS, granularity="sample", pooling=pooling)[
            "bert.encoder.layer.1"
        ]
        assert torch.equal(pooled.activations[2], reduce(all_tokens.for_input(2).activations))
    assert acts[ActivationGranularity.SAMPLE].index[1] == (1, 0, TEXTS[1])


def test_batches_give_the_same_activations_as_one_batch():
    one = splitter_for(batch_size=8).get_activations(TEXTS, granularity="word")["bert.encoder.layer.1"]
    many = splitter_for(batch_size=1).get_activations(TEXTS, granularity="word")["bert.encoder.layer.1"]
    assert one.index == many.index
    assert_close_to_scale(one.activations, many.activations)


def test_forward_stops_after_the_last_split_point():
    model, tokenizer = tiny_model("bert", True)
    calls = []
    handle = model.bert.encoder.layer[1].register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False).get_activations(
            TEXTS
        )
        assert not calls
        ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False).get_activations(
            TEXTS
        )
        assert calls
    finally:
        handle.remove()


@pytest.mark.parametrize(("name", "head"), [("bert", True), ("gpt2", True), ("llama", False)])
def test_forward_from_unchanged_activations_reproduces_the_output(name, head):
    splitter = splitter_for(name, head, split_points=0)
    model, tokenizer = tiny_model(name, head)
    point = splitter.split_points[0]
    acts = splitter.get_activations(TEXTS, granularity="all_tokens")[point]
    output = splitter.forward_from(0, acts, TEXTS)
    key = "logits" if head else "last_hidden_state"
    for k, text in enumerate(TEXTS):
        with torch.no_grad():
            expected = getattr(model(**tokenizer(text, return_tensors="pt")), key)[0]
        length = expected.shape[0] if expected.dim() > 1 else None
        ours = getattr(output, key)[k]
        ours = ours[:length] if length is not None else ours
        assert_close_to_scale(ours, expected, msg=text)


def reference_gradient(model, batch, path, scale):
    """d logits.sum() / d scale where the hidden states at `path` are multiplied by `scale`, with a torch hook."""
    handle = model.get_submodule(path).register_forward_hook(lambda m, a, output: output * scale)
    try:
        logits = model(**batch).logits
    finally:
        handle.remove()
    return torch.autograd.grad(logits.sum(), scale)[0], logits


def test_gradients_flow_through_intervene_and_forward_from():
    splitter = splitter_for(split_points=0)
    model, _ = tiny_model("bert", True)
    _, batch = splitter.tokenize(TEXTS)
    scale = torch.full((32,), 1.5, requires_grad=True)
    expected_grad, expected_logits = reference_gradient(model, batch, "bert.encoder.layer.0", scale)
    output = splitter.intervene(TEXTS, 0, lambda hidden: hidden * scale)
    assert_close_to_scale(output.logits, expected_logits)
    grad = torch.autograd.grad(output.logits.sum(), scale)[0]
    assert grad.abs().sum() > 0
    assert_close_to_scale(grad, expected_grad)
    # forward_from: d logits / d activations, the activations being the block output times `scale`
    acts = splitter.get_activations(TEXTS, granularity="all_tokens")["bert.encoder.layer.0"]
    rows = acts.activations.clone().requires_grad_(True)
    acts.activations = rows * scale
    logits = splitter.forward_from("bert.encoder.layer.0", acts, TEXTS).logits
    assert_close_to_scale(logits, expected_logits)
    assert_close_to_scale(torch.autograd.grad(logits.sum(), scale)[0], expected_grad)


def test_forward_from_a_full_tensor_checks_its_shape():
    splitter = splitter_for(split_points=0)
    with pytest.raises(ValueError, match="activations has shape"):
        splitter.forward_from(0, torch.zeros(1, 2, 32), TEXTS)
    with pytest.raises(ValueError, match="all_tokens"):
        splitter.forward_from(0, splitter.get_activations(TEXTS)["bert.encoder.layer.0"], TEXTS)


@pytest.mark.parametrize(("name", "padding_side"), [("bert", "right"), ("gpt2", "left"), ("llama", "left")])
def test_no_side_effect_on_model_and_tokenizer(name, padding_side):
    model, tokenizer = tiny_model(name, True, padding_side)
    model = copy.deepcopy(model).train()
    model.get_input_embeddings().weight.requires_grad_(False)
    before = snapshot(model, tokenizer)
    dicts = [set(module.__dict__) for module in model.modules()]
    splitter = ModelWithSplitPoints(model, split_points=[0, 1], tokenizer=tokenizer, progress=False)
    splitter.get_activations(TEXTS, granularity="word")
    splitter.forward_from(
        0, splitter.get_activations(TEXTS, granularity="all_tokens")[splitter.split_points[0]], TEXTS
    )
    splitter.intervene(TEXTS, 1, lambda hidden: hidden + 1)

    def fail(hidden):
        raise RuntimeError("boom")

    with pytest.raises(Exception, match="boom"):
        splitter.intervene(TEXTS, 1, fail)
    assert_unchanged(before, snapshot(model, tokenizer))
    assert [set(module.__dict__) for module in model.modules()] == dicts  # nnsight's controllers removed
    assert model.training


def test_gpt2_without_pad_token_pads_inside_the_call():
    splitter = splitter_for("gpt2", True)
    assert splitter.tokenizer.pad_token is None
    acts = splitter.get_activations(TEXTS, granularity="token")["transformer.h.1"]
    assert len(acts) == sum(len(splitter.tokenizer(text)["input_ids"]) for text in TEXTS)
    assert splitter.tokenizer.pad_token is None


def test_too_long_inputs_raise_unless_truncated():
    with pytest.raises(ValueError, match=r"inputs\[0\] has .* tokens but max_length is 4.*truncation=True"):
        splitter_for(max_length=4).get_activations(TEXTS)
    acts = splitter_for(max_length=4, truncation=True).get_activations(TEXTS, granularity="all_tokens")
    assert max(j for _, j, _ in acts["bert.encoder.layer.1"].index) == 3


def test_streaming_to_disk_matches_memory(tmp_path):
    splitter = splitter_for(split_points=[0, 1], batch_size=1)
    in_memory = splitter.get_activations(TEXTS, granularity="word")
    paths = splitter.get_activations(TEXTS, granularity="word", save_dir=tmp_path, shard_rows=4)
    assert len(paths) > 2 and all(path.exists() for path in paths)
    loaded = load_activations(tmp_path)
    assert set(loaded) == set(in_memory)
    for name, acts in in_memory.items():
        assert loaded[name].index == acts.index
        assert torch.equal(loaded[name].activations, acts.activations)
        assert loaded[name].granularity is ActivationGranularity.WORD
    with pytest.raises(FileExistsError, match="save_dir"):
        splitter.get_activations(TEXTS, save_dir=tmp_path)
    shards = list(iter_activation_shards(tmp_path, "bert.encoder.layer.1"))
    assert sum(len(shard) for shard in shards) == len(in_memory["bert.encoder.layer.1"])


def test_sharded_model_gives_the_same_activations():
    from accelerate import dispatch_model

    model, tokenizer = tiny_model("llama", True)
    device_map = {
        "model.embed_tokens": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "cpu",
        "model.norm": "cpu",
    }
    device_map |= {"model.rotary_emb": "cpu", "lm_head": "cpu"}
    sharded = dispatch_model(copy.deepcopy(model), device_map=device_map, force_hooks=True)
    sharded.hf_device_map = device_map
    assert hasattr(sharded.model.layers[0], "_hf_hook")
    expected = ModelWithSplitPoints(model, split_points=[0, 1], tokenizer=tokenizer, progress=False)
    ours = ModelWithSplitPoints(
        sharded, split_points=[0, 1], tokenizer=tokenizer, device="cpu", progress=False
    )
    for name, acts in ours.get_activations(TEXTS).items():
        assert torch.equal(acts.activations, expected.get_activations(TEXTS)[name].activations)
    assert hasattr(sharded.model.layers[0], "_hf_hook")  # accelerate's own hooks kept


def test_loads_a_model_folder(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = tiny_model("bert", True)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    splitter = ModelWithSplitPoints(
        str(tmp_path), split_points=1, automodel=AutoModelForSequenceClassification, progress=False
    )
    loaded = splitter.get_activations(TEXTS)["bert.encoder.layer.1"]
    assert_close_to_scale(
        loaded.activations, splitter_for().get_activations(TEXTS)["bert.encoder.layer.1"].activations
    )


def test_remote_is_passed_to_the_trace():
    import nnsight

    model, tokenizer = tiny_model("bert", True)
    seen = []

    class Recording(nnsight.NNsight):
        def trace(self, *args, remote=False, **kwargs):
            seen.append(remote)
            return super().trace(*args, **kwargs)

    with pytest.warns(UserWarning, match="submodule named 'output'"):
        wrapper = Recording(copy.deepcopy(model))  # nnsight leaves controllers on the modules it wraps
    splitter = ModelWithSplitPoints(
        wrapper, split_points=0, tokenizer=tokenizer, remote="local", progress=False
    )
    splitter.get_activations(TEXTS)
    assert seen == ["local"]
