"""Shared fixtures: tiny models built in code (no Hub), and a snapshot of everything a call must not change."""

from __future__ import annotations

import os

import pytest
import torch

import interpreto

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker: two workers with two threads each on two cores run 10x slower
    torch.set_num_threads(1)


# every attribution method, gradient ones first
ALL_METHODS = [
    getattr(interpreto, name)
    for name in (
        "Saliency",
        "InputXGradient",
        "IntegratedGradients",
        "GradientShap",
        "SmoothGrad",
        "SquareGrad",
        "VarGrad",
        "Occlusion",
        "Lime",
        "KernelShap",
        "Sobol",
    )
]


@pytest.fixture(scope="session")
def bert():
    from interpreto.zoo.tiny import tiny_bert_classifier

    return tiny_bert_classifier(num_labels=3, seed=0)


@pytest.fixture(scope="session")
def gpt2():
    from interpreto.zoo.tiny import tiny_gpt2

    return tiny_gpt2(seed=0)


@pytest.fixture(scope="session")
def llama():
    from interpreto.zoo.tiny import tiny_llama

    return tiny_llama(seed=0, add_bos=True)


@pytest.fixture(scope="session")
def planted():
    from interpreto.zoo.planted import planted_classifier

    return planted_classifier(seed=0)


def scaled_head(model, factor: float = 50.0):
    """A copy of a random classifier with a scaled head, so scores are far from 0 (see PITFALLS.md)."""
    import copy

    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.classifier.weight.mul_(factor)
    return scaled.eval()


def snapshot(model, tokenizer) -> dict:
    """Everything of the user's that an explainer must leave as it was."""
    return {
        "weights": {name: p.detach().clone() for name, p in model.state_dict().items()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "grads": {name: p.grad for name, p in model.named_parameters()},
        "modes": [m.training for m in model.modules()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "len_tokenizer": len(tokenizer),
        "padding_side": tokenizer.padding_side,
        "pad_token": tokenizer.pad_token,
        "truncation_side": tokenizer.truncation_side,
        "vocab_size": model.config.vocab_size,
        "n_embeddings": model.get_input_embeddings().num_embeddings,
    }


def assert_unchanged(before: dict, after: dict) -> None:
    for key in before:
        if key == "weights":
            for name, value in before["weights"].items():
                assert torch.equal(value, after["weights"][name]), name
        else:
            assert before[key] == after[key], key
