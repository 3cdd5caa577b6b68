"""Gallery: a concept dashboard of the zoo's sentiment classifier: which TopK SAE concepts drive each class.

Splits `interpreto.zoo.sentiment_classifier()` (MiniLM fine-tuned on tweets, negative / positive) after block 4
of 6, fits a `TopKSAEConcepts` (64 concepts, top 8 per token) on the text tokens of `--n-tweets` held-out tweets
(`balanced_tweet_split()`'s test set, never seen in fine-tuning), explains the predicted class's logit of the
first `--n-explained` of them in concept space (`concept_attributions` with Integrated Gradients, the
reconstruction error a player of its own, completeness asserted within 1%), and averages the attributions per
predicted class (`global_importance`). The top concepts of each class get their top-activating words
(`TopKInputs`), an overview (`concept_overview`) and a page each (`concept_page`), saved as HTML and PNG under
`docs/gallery/concept-dashboard/`; writes `docs/gallery/concept-dashboard.md`, its JSON and an importance plot.

Run with `OMP_NUM_THREADS=1 python gallery/concept_dashboard.py`: measured 49 to 62 s by its own timer (about
55 s of CPU time; 65 to 85 s wall with the imports, on a 2-core machine shared with other jobs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from transformers.utils import logging as hf_logging

from interpreto import ModelWithSplitPoints
from interpreto.attribution import IntegratedGradients
from interpreto.concepts import TopKSAEConcepts
from interpreto.concepts.importance.global_importance import global_importance
from interpreto.concepts.interpret import ConceptCodes, TopKInputs
from interpreto.evaluation import L0, ExplainedVariance
from interpreto.visualization.concept_overview import concept_overview
from interpreto.visualization.concept_page import concept_page
from interpreto.zoo import sentiment_classifier
from interpreto.zoo.sentiment import balanced_tweet_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import DOCS_GALLERY, provenance, write_page  # noqa: E402

PAGE = "concept-dashboard"
LAYER = 4
NB_CONCEPTS, TOP_K = 64, 8
IG_STEPS = 8
N_WORDS = 5


def concept_index(name: str) -> int:
    return int(name.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tweets", type=int, default=300, help="held-out tweets the SAE is fitted on")
    parser.add_argument("--n-explained", type=int, default=60, help="tweets explained in concept space")
    parser.add_argument("--per-class", type=int, default=3, help="top concepts kept per class")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    began = time.perf_counter()
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    out = DOCS_GALLERY / PAGE
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    start = time.perf_counter()
    model, tokenizer = sentiment_classifier()
    _, held_out = balanced_tweet_split()
    tweets = [text for text, _ in held_out[: args.n_tweets]]
    gold = torch.tensor([label for _, label in held_out[: args.n_tweets]])
    with torch.inference_mode():  # in chunks: one batch of 300 pads every tweet to the longest
        predicted = torch.cat(
            [
                model(**tokenizer(tweets[i : i + 32], padding=True, return_tensors="pt")).logits.argmax(-1)
                for i in range(0, len(tweets), 32)
            ]
        )
    accuracy = float((predicted == gold).float().mean())
    splitter = ModelWithSplitPoints(
        model, split_points=LAYER, tokenizer=tokenizer, batch_size=32, progress=False
    )
    point = splitter.split_points[0]
    layer = splitter.get_activations(tweets, granularity="token")[point]
    timings["activations"] = time.perf_counter() - start

    start = time.perf_counter()
    sae = TopKSAEConcepts(splitter, nb_concepts=NB_CONCEPTS, top_k=TOP_K)
    sae.fit(layer, nb_epochs=args.epochs, batch_size=256, seed=0, progress=False)
    quality = {
        "explained_variance": ExplainedVariance().compute(sae, layer).value,
        "l0": L0().compute(sae, layer).value,
    }
    timings["fit"] = time.perf_counter() - start
    print(f"accuracy {accuracy:.3f}, {tuple(layer.activations.shape)} token rows, {quality}", flush=True)

    start = time.perf_counter()
    explained = tweets[: args.n_explained]
    attributions = sae.concept_attributions(
        explained, method=IntegratedGradients, n_perturbations=IG_STEPS, positions="text", progress=False
    )
    worst = 0.0
    for output in attributions:
        gap = output.attributions.nansum(-1) - output.convergence_delta  # f(x) - f(baseline)
        worst = max(worst, float((output.convergence_delta.abs() / gap.abs()).max()))
    assert worst <= 0.01, f"IG completeness residual {worst:.3g} of f(x) - f(baseline)"
    importance = global_importance(attributions)
    error_share = float(
        sum(abs(float(o.attributions[0, -1])) for o in attributions)
        / sum(float(o.attributions[0].abs().sum()) for o in attributions)
    )
    timings["importance"] = time.perf_counter() - start
    counts = dict(zip(importance.targets, importance.counts, strict=True))
    print(f"explained {counts}, IG completeness worst {worst:.2e}, error share {error_share:.3f}", flush=True)

    start = time.perf_counter()
    codes = ConceptCodes.compute(sae, tweets, progress=False)
    top_words = TopKInputs(sae, k=10, granularity="word", context=6, progress=False).interpret(
        "all", inputs=codes
    )
    timings["top_words"] = time.perf_counter() - start

    classes = list(model.config.id2label.values())
    mean = {t: dict(zip(importance.elements, importance.mean[r].tolist(), strict=True)) for r, t in
            enumerate(importance.targets)}  # fmt: skip
    chosen: list[int] = []
    for target in classes:
        ranked = [
            concept_index(n) for n, _ in importance.ranking(target, by="mean") if n.startswith("concept")
        ]
        chosen += [c for c in ranked if c not in chosen][: args.per_class]

    def words(concept: int, n: int = N_WORDS) -> list[str]:
        return [example.text.strip() for example in top_words.get(concept, [])[:n]]

    labels = {c: ", ".join(words(c, 3)) for c in chosen}
    # short score names: the page figure draws about 20 characters of a name before its value
    score_names = {target: f"imp. {target}" for target in classes}
    scores = {score_names[t]: {c: mean[t][f"concept {c}"] for c in chosen} for t in classes}

    start = time.perf_counter()
    overview = concept_overview(
        codes, {c: top_words[c] for c in chosen}, labels=labels, scores=scores,
        sort_by=score_names[classes[0]], title="Top concepts of the sentiment classifier, block 4",
    )  # fmt: skip
    overview.save(out / "overview.html")
    overview.save_png(out / "overview.png", dpi=110)
    for c in chosen:
        page = concept_page(
            codes, c, top_words[c][:6], label=labels[c], scores={s: v[c] for s, v in scores.items()}
        )
        html = page.html()
        assert "<script" not in html.lower()
        page.save(out / f"concept-{c}.html")
        page.save_png(out / f"concept-{c}.png", dpi=110)
    timings["pages"] = time.perf_counter() - start

    rows = []
    for c in chosen:
        stats = overview_stats(overview, c)
        rows.append(
            {
                "concept": c,
                "top_words": words(c),
                "importance": {t: mean[t][f"concept {c}"] for t in classes},
                "density": stats.density,
                "max_activation": stats.max_activation,
            }
        )
    error = {t: mean[t]["reconstruction error"] for t in classes}
    plot(rows, classes, error, DOCS_GALLERY / f"{PAGE}.png")
    seconds = time.perf_counter() - began
    data = {
        "n_tweets": len(tweets),
        "n_explained": len(explained),
        "token_rows": int(layer.activations.shape[0]),
        "split_point": point,
        "accuracy": accuracy,
        "nb_concepts": NB_CONCEPTS,
        "top_k": TOP_K,
        "epochs": args.epochs,
        "ig_steps": IG_STEPS,
        "quality": quality,
        "ig_completeness_worst": worst,
        "error_share": error_share,
        "explained_per_class": counts,
        "reconstruction_error_importance": error,
        "concepts": rows,
        "global_importance": importance.to_dict(),
        "timings_s": timings,
        "seconds": seconds,
    }
    write_page(PAGE, markdown(data, classes, seconds), data)
    for row in rows:
        values = ", ".join(f"{t} {v:+.3f}" for t, v in row["importance"].items())
        print(f"concept {row['concept']:2d}: {', '.join(row['top_words']):50} {values}")
    print(f"timings { ({k: round(v, 1) for k, v in timings.items()}) }, total {seconds:.1f} s")


def overview_stats(overview, concept: int):
    return next(row.stats for row in overview.rows if row.concept == concept)


def plot(rows: list[dict], classes: list[str], error: dict, path) -> None:
    """Mean IG attribution of each chosen concept to the predicted class's logit, one panel per class."""
    figure = Figure(figsize=(11, 0.45 * len(rows) + 1.6), layout="constrained")
    axes = figure.subplots(1, len(classes), sharey=True)
    names = [f"{row['concept']}: {', '.join(row['top_words'][:3])}" for row in rows] + [
        "reconstruction error"
    ]
    for ax, target in zip(axes, classes, strict=True):
        values = [row["importance"][target] for row in rows] + [error[target]]
        colors = ["tab:red" if v > 0 else "tab:blue" for v in values[:-1]] + ["grey"]
        ax.barh(range(len(values)), values, color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(values)), names, fontsize=8)
        ax.set_ylim(len(values) - 0.5, -0.5)  # first concept on top
        ax.set_title(f"tweets predicted {target}")
        ax.set_xlabel(f"mean IG attribution to the {target} logit")
    figure.suptitle(
        "Concept importance per predicted class (TopK SAE at block 4 of the sentiment classifier)"
    )
    figure.savefig(path, dpi=110)


def markdown(data: dict, classes: list[str], seconds: float) -> str:
    header = "| concept | top words | " + " | ".join(f"importance, predicted {t}" for t in classes)
    header += " | density | page |"
    rule = "|---" * (len(classes) + 4) + "|"
    lines = []
    for row in data["concepts"]:
        c = row["concept"]
        values = " | ".join(f"{row['importance'][t]:+.3f}" for t in classes)
        top = ", ".join(w.replace("|", "\\|") for w in row["top_words"])
        lines.append(
            f"| {c} | {top} | {values} | {100 * row['density']:.1f}% | "
            f"[HTML]({PAGE}/concept-{c}.html), [PNG]({PAGE}/concept-{c}.png) |"
        )
    error = " | ".join(f"{data['reconstruction_error_importance'][t]:+.3f}" for t in classes)
    lines.append(f"| reconstruction error | | {error} | | |")
    counts = ", ".join(f"{n} predicted {t}" for t, n in data["explained_per_class"].items())
    quality = data["quality"]
    return f"""# Concept dashboard: the sentiment classifier

Which internal concepts drive a real classifier's decisions? The zoo's sentiment classifier (MiniLM fine-tuned
on tweets, labels {" / ".join(classes)}; accuracy {data["accuracy"]:.3f} on these tweets) is split after block
{LAYER} of 6 (`{data["split_point"]}`), and a TopK sparse autoencoder ({data["nb_concepts"]} concepts, the
{data["top_k"]} largest codes per token, {data["epochs"]} epochs) is fitted on the {data["token_rows"]:,} text
tokens of {data["n_tweets"]} held-out tweets (explained variance {quality["explained_variance"]:.3f}, L0
{quality["l0"]:.1f}). `concept_attributions` then explains the predicted class's logit of the first
{data["n_explained"]} tweets ({counts}) in concept space with Integrated Gradients ({data["ig_steps"]} steps,
`positions="text"`): the model restarts at block {LAYER} from `decode(z) + e`, the reconstruction error `e` a
player of its own, so the attributions add up to f(x) - f(baseline) (largest residual
{data["ig_completeness_worst"]:.1e} of it, asserted below 1%). `global_importance` averages them per predicted
class; the error takes {100 * data["error_share"]:.1f}% of the total |attribution|. The top
{len(data["concepts"]) // len(classes)} concepts of each class (by mean attribution) are shown with their top
words (`TopKInputs`, word granularity, over the {data["n_tweets"]} tweets).

![Mean attribution of each top concept to the predicted class's logit]({PAGE}.png)

{header}
{rule}
{chr(10).join(lines)}

Importance: mean IG attribution to the logit of the predicted class, over the explained tweets predicted that
class (positive: the concept pushes toward the prediction). Density: share of the tweets' text tokens where the
concept fires. Top words are the words on which the concept fires most, each once; some concepts are about
sentiment words, others about topics that the training tweets tied to one class.

The dashboard: the overview of these concepts ([HTML]({PAGE}/overview.html), [PNG]({PAGE}/overview.png), from
`concept_overview`, sorted by importance for {classes[0]}), and one `concept_page` per concept (linked in the
table: activation histogram, top examples with every token coloured by the concept's activation). Their label
scores `imp. {classes[0]}` and `imp. {classes[1]}` are the importances of the table.

![Overview of the top concepts]({PAGE}/overview.png)

{provenance(seconds)}
"""


if __name__ == "__main__":
    main()
