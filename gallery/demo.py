"""Demo: explain a real sentence with a real classifier and a real continuation with a real LM, offline.

Builds the zoo models into the cache on first use (the sentiment classifier fine-tunes for a few minutes,
SmolLM2 is de-quantized once), prints the top elements, and writes a standalone HTML report and the
explanations as JSON.

Run with `make demo`, or `python gallery/demo.py --out demo-out`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from interpreto import IntegratedGradients, Occlusion, save_explanations, save_html
from interpreto.zoo import sentiment_classifier, smollm2

REVIEWS = [
    "I absolutely loved this movie, the acting was wonderful!",
    "The service was slow and the food was awful. Never again.",
]
PROMPT, CONTINUATION = "The capital of France is", " Paris."
CHAT = [{"role": "user", "content": "Name one primary colour."}]


def show(output, k: int = 3) -> None:
    """Prints each target with its score and top elements."""
    for row, name in enumerate(output.target_names):
        top = ", ".join(f"{element!r} {value:+.3f}" for element, value in output.top(k, target=row))
        print(f"  {name!r:>12} ({output.score} {float(output.scores[row]):+.3f}): {top}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for report.html")
    args = parser.parse_args()
    outputs = []

    start = time.perf_counter()
    model, tokenizer = sentiment_classifier()
    print(f"sentiment classifier ready in {time.perf_counter() - start:.1f} s")
    explanations = IntegratedGradients(model, tokenizer, n_perturbations=50)(REVIEWS)
    for review, output in zip(REVIEWS, explanations, strict=True):
        print(f"\n{review}\n  IG completeness residual: {float(output.convergence_delta[0]):+.2e}")
        show(output)
    outputs += explanations

    start = time.perf_counter()
    lm, lm_tokenizer = smollm2()
    print(f"\nSmolLM2 ready in {time.perf_counter() - start:.1f} s")
    # Occlusion is exact for any model; IG on this LM needs many steps (its log-probabilities jump along the
    # straight path from the baseline: the same residuals as captum's LayerIntegratedGradients)
    generation = Occlusion(lm, lm_tokenizer, granularity="token")(PROMPT, CONTINUATION)
    print(f"\n{PROMPT!r} -> {CONTINUATION!r}: log-probability of each continuation token (Occlusion)")
    show(generation[0], k=2)
    chat = Occlusion(lm, lm_tokenizer)(CHAT, None, max_new_tokens=6)
    print(f"\nchat {CHAT[0]['content']!r} -> generated {''.join(chat[0].target_names)!r}")
    show(chat[0], k=2)
    outputs += generation + chat

    args.out.mkdir(parents=True, exist_ok=True)
    report = save_html(outputs, args.out / "report.html", title="interpreto demo")
    save_explanations(outputs, args.out / "explanations.json")
    print(f"\nwrote {report} and {args.out / 'explanations.json'}")


if __name__ == "__main__":
    main()
