"""Activation extraction throughput (tokens/s) of `ModelWithSplitPoints` against a plain PyTorch floor.

The floor is the loop a user would write without us: the same batches, tokenized with padding, one
`model(..., output_hidden_states=True)` call each under `torch.inference_mode()`, then the padding rows dropped
from the wanted layer (float32, CPU). Ours is `get_activations(texts, granularity="all_tokens")` at a middle and
at the last block: the middle split shows the early stop (layers after it never run), the last one the overhead
of nnsight. Prints a table and writes JSON to `benchmarks/results/activations.json`.

Run with `.venv/bin/python benchmarks/bench_activations.py` (CPU numbers depend on the machine; compare ratios).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from interpreto import ModelWithSplitPoints
from interpreto.model._architectures import n_layers
from interpreto.zoo import sentiment_classifier, sentiment_tweets, smollm2


def best_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def floor(model, tokenizer, texts: list[str], batch_size: int, layer: int) -> None:
    """The plain loop: padded batches, all hidden states, padding rows dropped from block `layer`'s output."""
    pad = {} if tokenizer.pad_token is not None else {"pad_token": tokenizer.eos_token}
    tokenizer = tokenizer if not pad else _with_pad(tokenizer)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
            hidden = model(**batch, output_hidden_states=True).hidden_states[layer + 1]
            hidden[batch["attention_mask"].bool()].float().cpu()


def _with_pad(tokenizer):
    import copy

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def bench_model(name: str, model, tokenizer, texts: list[str], batch_size: int, repeats: int) -> list[dict]:
    n_tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    layers = n_layers(model)
    rows = []
    # the last block's output is hidden_states[-1] only before a final norm: compare the middle block and the
    # second-to-last block (which the floor reads exactly)
    for layer in (layers // 2, layers - 2):
        splitter = ModelWithSplitPoints(model, split_points=layer, tokenizer=tokenizer, batch_size=batch_size)
        ours = best_time(
            lambda splitter=splitter: splitter.get_activations(
                texts, granularity="all_tokens", progress=False
            ),
            repeats,
        )
        plain = best_time(lambda layer=layer: floor(model, tokenizer, texts, batch_size, layer), repeats)
        rows.append(
            {
                "model": name,
                "split_point": splitter.split_points[0],
                "layers": layers,
                "texts": len(texts),
                "tokens": n_tokens,
                "batch_size": batch_size,
                "ours_tokens_per_s": n_tokens / ours,
                "floor_tokens_per_s": n_tokens / plain,
                "ratio": plain / ours,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "activations.json")
    args = parser.parse_args()
    texts = [text for text, _ in sentiment_tweets()[: args.texts]]
    rows = []
    for name, build in (("smollm2", smollm2), ("minilm-sentiment", sentiment_classifier)):
        model, tokenizer = build()
        rows += bench_model(name, model, tokenizer, texts, args.batch_size, args.repeats)
    header = f"{'model':<18}{'split point':<28}{'tokens':>8}{'ours tok/s':>12}{'floor tok/s':>13}{'ratio':>8}"
    print(header)
    for row in rows:
        print(
            f"{row['model']:<18}{row['split_point']:<28}{row['tokens']:>8}{row['ours_tokens_per_s']:>12.0f}"
            f"{row['floor_tokens_per_s']:>13.0f}{row['ratio']:>8.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch_threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
