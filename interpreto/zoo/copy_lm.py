"""A tiny Llama trained to copy one known earlier word: planted ground truth for generation attributions.

A prompt is 6 to 12 random lowercase letters with one capital letter inserted at a random position, then the
word ``copy``; the continuation is that capital letter, then the end-of-sequence token::

    prompt: "k d R m a q copy"    continuation: " R"    source word index: 2

The capital letter (the source) is the only evidence for the answer, so a faithful attribution method puts
the largest score of the continuation token's row on the source word. `copy_task_prompts` returns the source's
word index with each prompt.

Training also removes words the way perturbation methods do (each word replaced by the tokenizer's
``<mask>`` token): the lowercase letters and ``copy`` at a random rate between 0 and 60%, the source in 15% of
the sequences, then with a uniform target over the 26 capitals. The model thus keeps answering when other words
are removed and has no preferred capital without the source, as the planted classifier has no preferred label
without its marker.

Measured with seeds 0 to 3 on 100 held-out prompts: Occlusion, Sobol, IntegratedGradients and Saliency put the
top score of the answer's row on the source for all 100. InputXGradient does for only 18 to 56: the embeddings
reach every layer through RMSNorm, which is scale invariant, so gradient . embedding is no test of faithfulness
here (as on the planted BERT).
"""

from __future__ import annotations

import json
import random
import string
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from interpreto.zoo._cache import build_once
from interpreto.zoo._training import torch_threads
from interpreto.zoo.tiny import seeded_model

FILLER_LETTERS = tuple(string.ascii_lowercase)
"""Words around the source, each one token."""
SOURCE_LETTERS = tuple(string.ascii_uppercase)
"""Words the model copies, each one token; a prompt holds exactly one."""
COPY_WORD = "copy"
"""The last word of every prompt."""
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<mask>")
MIN_FILLER_WORDS, MAX_FILLER_WORDS = 6, 12
MIN_ACCURACY = 0.99

_CACHE_NAME = "copy-lm-v1"
_MAX_LENGTH = 32
_TEST_SEED_OFFSET = 1_000_000
# 16,000 prompts, one epoch (~7 s): with half the other words removed, the source still gets p ~ 0.97 (8,000
# prompts: 0.6 for some seeds)
_N_TRAIN, _N_TEST = 16_000, 1000
_TRAINING = {"n_epochs": 1, "batch_size": 64, "learning_rate": 3e-3}
_MAX_MASK_RATE, _SOURCE_MASK_RATE = 0.6, 0.15


def copy_task_prompts(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """Return ``n`` copy-task prompts with their continuation and the word index of their source.

    Args:
        n: Number of prompts.
        seed: Seed of the prompt generator; the same seed gives the same prompts.

    Returns:
        ``(prompt, continuation, source_word_index)`` triples: ``prompt`` is single-letter words and ``copy``
        joined by single spaces, ``continuation`` is ``" " + source`` and ``prompt.split()[source_word_index]``
        is the source, the prompt's only capital letter.

    Examples:
        >>> prompt, continuation, source = copy_task_prompts(1, seed=3)[0]
        >>> prompt.split()[source] == continuation.strip() and prompt.endswith(" copy")
        True
    """
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        words = [rng.choice(FILLER_LETTERS) for _ in range(rng.randint(MIN_FILLER_WORDS, MAX_FILLER_WORDS))]
        source = rng.choice(SOURCE_LETTERS)
        source_word_index = rng.randint(0, len(words))
        words.insert(source_word_index, source)
        prompts.append((" ".join(words + [COPY_WORD]), " " + source, source_word_index))
    return prompts


def copy_lm_tokenizer() -> PreTrainedTokenizerFast:
    """Return the word-level tokenizer of the copy task: one token per letter, ``copy`` and the special tokens.

    Words are split on whitespace; tokenizing a text prepends ``<s>``. ``<mask>`` is the token attribution
    methods replace removed words with.
    """
    vocabulary = {token: i for i, token in enumerate(SPECIAL_TOKENS + FILLER_LETTERS + SOURCE_LETTERS)}
    vocabulary[COPY_WORD] = len(vocabulary)
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", vocabulary["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        add_bos_token=True,
        padding_side="left",
        model_max_length=_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
    )


def _copy_lm_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=_MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _training_batch(
    rows: list[tuple[str, str, int]], tokenizer: PreTrainedTokenizerFast, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids ``<s> prompt answer </s>``, attention mask, and per-position target distributions.

    Words are replaced by ``<mask>`` as described in the module docstring; a sequence whose source is masked
    has a uniform target over the capitals at the answer position and no target after it.
    """
    vocabulary = tokenizer.get_vocab()
    mask_id, eos_id = tokenizer.mask_token_id, tokenizer.eos_token_id
    capital_ids = [vocabulary[letter] for letter in SOURCE_LETTERS]
    sequences, answers = [], []
    for prompt, continuation, source in rows:
        words = prompt.split()
        rate = rng.uniform(0, _MAX_MASK_RATE)
        masked_source = rng.random() < _SOURCE_MASK_RATE
        ids = [tokenizer.bos_token_id]
        for index, word in enumerate(words):
            removed = masked_source if index == source else rng.random() < rate
            ids.append(mask_id if removed else vocabulary[word])
        answers.append((len(ids) - 1, vocabulary[continuation.strip()], masked_source))
        sequences.append(ids + [vocabulary[continuation.strip()], eos_id])
    length = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    targets = torch.zeros(len(rows), length, len(tokenizer))
    for row, (ids, (position, answer, masked_source)) in enumerate(zip(sequences, answers, strict=True)):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        if masked_source:
            targets[row, position, capital_ids] = 1 / len(capital_ids)
        else:
            targets[row, position, answer] = 1.0
            targets[row, position + 1, eos_id] = 1.0
    return input_ids, attention_mask, targets


def _train(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, seed: int) -> None:
    """AdamW with a linear decay, cross-entropy on the answer and end-of-sequence positions only."""
    rows = copy_task_prompts(_N_TRAIN, seed=seed)
    rng = random.Random(seed)
    batch_size, n_epochs = _TRAINING["batch_size"], _TRAINING["n_epochs"]
    n_steps = n_epochs * (len(rows) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=_TRAINING["learning_rate"], weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / n_steps)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(n_epochs):
            rng.shuffle(rows)
            for start in range(0, len(rows) - batch_size + 1, batch_size):
                input_ids, attention_mask, targets = _training_batch(
                    rows[start : start + batch_size], tokenizer, rng
                )
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
                scored = targets.sum(-1) > 0
                loss = F.cross_entropy(logits[scored], targets[scored])
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
    model.eval()


@torch.no_grad()
def copy_accuracy(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, rows: list[tuple[str, str, int]]
) -> float:
    """Fraction of prompts whose greedy continuation is exactly the source followed by end-of-sequence."""
    by_length: dict[int, list[tuple[list[int], int]]] = {}
    for prompt, continuation, _ in rows:
        ids = tokenizer(prompt)["input_ids"]
        answer = tokenizer.convert_tokens_to_ids(continuation.strip())
        by_length.setdefault(len(ids), []).append((ids + [answer], answer))
    n_correct = 0
    for group in by_length.values():
        input_ids = torch.tensor([ids for ids, _ in group])
        predictions = model(input_ids=input_ids).logits[:, -2:].argmax(-1)
        answers = torch.tensor([answer for _, answer in group])
        n_correct += int(
            ((predictions[:, 0] == answers) & (predictions[:, 1] == tokenizer.eos_token_id)).sum()
        )
    return n_correct / len(rows)


def _build_copy_lm(folder: Path, seed: int) -> None:
    """Train the copy-task Llama and write it, its tokenizer and ``metrics.json`` into ``folder``."""
    started = time.perf_counter()
    tokenizer = copy_lm_tokenizer()
    model = seeded_model(LlamaForCausalLM, _copy_lm_config(tokenizer), seed)
    # One thread: weights independent of the core count, and faster than 2 threads on 2 busy cores.
    with torch_threads(1):
        _train(model, tokenizer, seed)
        accuracy = copy_accuracy(model, tokenizer, copy_task_prompts(_N_TEST, seed=seed + _TEST_SEED_OFFSET))
    if accuracy < MIN_ACCURACY:
        raise RuntimeError(
            f"The copy-task LM reached {accuracy:.3f} held-out accuracy with seed {seed}, below {MIN_ACCURACY}; "
            f"try another seed."
        )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    metrics = {
        "accuracy": accuracy,
        "n_train": _N_TRAIN,
        "n_test": _N_TEST,
        "seconds": round(time.perf_counter() - started, 2),
        "seed": seed,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))


def copy_task_lm(seed: int = 0) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Return a tiny Llama that copies the one capital letter of its prompt, and its tokenizer.

    Trained on first call on 16,000 `copy_task_prompts()` (one epoch, about 7 s on one CPU thread: 6.3 to 8.6 s
    for seeds 0 to 3), then loaded from ``cache_dir() / "copy-lm-v1" / f"seed-{seed}"`` (0.1 s). The build fails
    unless the greedy continuation of 1,000 held-out prompts is the source then end-of-sequence for 99% of them
    (100% with seeds 0 to 3); ``metrics.json`` in the folder records the accuracy and the build time. Two
    layers, hidden size 64, 4 heads, 90k parameters; a word-level tokenizer (`copy_lm_tokenizer`) built in code.

    Args:
        seed: Seed of the initialization, the training prompts, the removed words and the batch order.

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU; `copy_task_prompts` makes prompts.

    Examples:
        >>> model, tokenizer = copy_task_lm()
        >>> prompt, continuation, source = copy_task_prompts(1, seed=7)[0]
        >>> inputs = tokenizer(prompt, return_tensors="pt")
        >>> new_ids = model.generate(**inputs, max_new_tokens=3, do_sample=False)[0, inputs["input_ids"].shape[1] :]
        >>> tokenizer.decode(new_ids, skip_special_tokens=True) == continuation.strip()
        True
    """
    folder = build_once(f"{_CACHE_NAME}/seed-{seed}", lambda staging: _build_copy_lm(staging, seed))
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    return model, PreTrainedTokenizerFast.from_pretrained(folder)
