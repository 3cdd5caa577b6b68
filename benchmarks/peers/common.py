"""Helpers shared by the library adapters: model loading, word groups and version lookup."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


class NotAvailable(Exception):
    """The library cannot run this method on this task (the reason is the message)."""


def load_model(task: str, path: str):
    """Load `(model, tokenizer)` from a zoo folder on disk, in eval mode and float32, as every library sees it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def package_versions(*names: str) -> dict[str, str]:
    """Installed version of each distribution (`"missing"` when it is not installed)."""
    found = {}
    for name in ("torch", "transformers", *names):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def word_ids(tokenizer, text: str):
    """`(input_ids (1, seq), word index per token (seq,))`, special tokens as their own groups.

    Words are the tokenizer's words (`word_ids()`); the groups are numbered from 0 as captum's feature masks
    expect.
    """
    import torch

    encoding = tokenizer(text, return_tensors="pt")
    groups, numbers = [], {}
    for position, word in enumerate(encoding.word_ids()):
        key = ("word", word) if word is not None else ("special", position)
        groups.append(numbers.setdefault(key, len(numbers)))
    return encoding["input_ids"], torch.tensor([groups])
