"""Activations equal a plain forward hook (and `output_hidden_states`) for every architecture, padded or not."""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from tests.model.architectures import ARCHITECTURES, tiny_model
from tests.tolerance import assert_close_to_scale

TEXTS = ["The dog runs.", "A cat is very good, and the dog is bad!", "Hi"]
NO_HEAD = {"t5-encoder"}  # T5EncoderModel has no classifier / LM head of its own
CASES = [(name, head) for name in ARCHITECTURES for head in (False, True) if not (head and name in NO_HEAD)]


def hooked_outputs(model, tokenizer, text: str, paths: list[str]) -> dict[str, list[torch.Tensor]]:
    """Every call's hidden states at `paths` on one unpadded input, with plain torch hooks."""
    outputs: dict[str, list[torch.Tensor]] = {path: [] for path in paths}
    handles = [
        model.get_submodule(path).register_forward_hook(
            lambda module, args, output, path=path: outputs[path].append(
                output if isinstance(output, torch.Tensor) else output[0]
            )
        )
        for path in paths
    ]
    try:
        with torch.no_grad():
            hidden_states = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    outputs["hidden_states"] = list(getattr(hidden_states, "hidden_states", None) or [])
    return outputs


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize(("name", "head"), CASES)
def test_activations_equal_hooks_in_padded_batches(name, head, padding_side):
    model, tokenizer = tiny_model(name, head, padding_side)
    splitter = ModelWithSplitPoints(
        model, split_points=[0, 1], tokenizer=tokenizer, batch_size=3, progress=False
    )
    activations = splitter.get_activations(TEXTS, granularity="all_tokens")
    assert list(activations) == splitter.split_points
    for k, text in enumerate(TEXTS):
        paths = sorted({name.split("#")[0] for name in splitter.split_points})
        reference = hooked_outputs(model, tokenizer, text, paths)
        for block, point in enumerate(splitter.split_points):
            path, _, call = point.partition("#")
            expected = reference[path][int(call or 0)][0]
            ours = activations[point].for_input(k).activations
            assert ours.dtype == torch.float32
            assert ours.shape == expected.shape
            assert_close_to_scale(ours, expected, msg=(point, k))
            if block == 0 and reference["hidden_states"]:
                assert_close_to_scale(ours, reference["hidden_states"][1][0], msg=(point, k))
