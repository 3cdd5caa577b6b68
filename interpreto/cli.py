"""`interpreto explain`: a quick look at an explanation from the command line.

    interpreto explain MODEL_DIR "I loved it" --method ig --html out.html
    interpreto explain MODEL_DIR "Roses are red, violets are" --target " blue" --granularity token

The model is loaded from a folder (or a Hub id, where the Hub is reachable) as a sequence classifier when its
config says so, else as a causal language model. The console shows each target's elements on a signed
background (red: for the target, blue: against; plain `[+0.12]` values when the output is not a terminal or
`NO_COLOR` is set), and `--html` writes the standalone page.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

import interpreto
from interpreto.attribution.output import AttributionOutput
from interpreto.model.task import is_classifier

METHODS = {
    "saliency": "Saliency",
    "ixg": "InputXGradient",
    "ig": "IntegratedGradients",
    "gradientshap": "GradientShap",
    "smoothgrad": "SmoothGrad",
    "squaregrad": "SquareGrad",
    "vargrad": "VarGrad",
    "occlusion": "Occlusion",
    "lime": "Lime",
    "kernelshap": "KernelShap",
    "sobol": "Sobol",
}
SAMPLED = {"ig", "gradientshap", "smoothgrad", "squaregrad", "vargrad", "lime", "kernelshap", "sobol"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `interpreto` command."""
    parser = argparse.ArgumentParser(prog="interpreto", description="Explain Hugging Face models.")
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "explain",
        help="explain one text with one attribution method",
        description=__doc__.split("\n\n")[2].replace("\n", " "),
    )
    explain.add_argument("model", help="folder of a saved model and tokenizer (or a Hub id)")
    explain.add_argument("text", help="the text to classify, or the prompt of a causal LM")
    explain.add_argument(
        "--target",
        help="classification: a label name or class index (default: the predicted class); "
        "generation: the continuation to explain (default: generated greedily)",
    )
    explain.add_argument("--method", choices=sorted(METHODS), default="ig", help="attribution method (ig)")
    explain.add_argument(
        "--granularity", choices=[g.value for g in interpreto.Granularity], default="word", help="(word)"
    )
    explain.add_argument("--n-perturbations", type=int, help="steps or samples of the method")
    explain.add_argument("--max-new-tokens", type=int, default=10, help="generation with no --target (10)")
    explain.add_argument("--html", help="write the standalone HTML page here")
    return parser


def load(model_path: str):
    """Loads a sequence classifier or a causal LM, and its tokenizer, from a folder or Hub id."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(model_path)
    classifier = any(name.endswith("ForSequenceClassification") for name in config.architectures or [])
    loader = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    return loader.from_pretrained(model_path), AutoTokenizer.from_pretrained(model_path)


def render(output: AttributionOutput, color: bool) -> str:
    """Console rendering: one line per target, elements on a signed background or with their values."""
    lines = []
    for row, name in enumerate(output.target_names):
        values = output.attributions[row].tolist()
        scale = max((abs(v) for v in values if not math.isnan(v)), default=0.0) or 1.0
        cells = [
            _cell(element, value, scale, color)
            for element, value in zip(output.elements, values, strict=True)
        ]
        lines.append(f"{name!r} ({output.score} {float(output.scores[row]):+.3f}): " + " ".join(cells))
    return "\n".join(lines)


def _cell(element: str, value: float, scale: float, color: bool) -> str:
    if not color:
        return f"{element}[{'nan' if math.isnan(value) else f'{value:+.3g}'}]"
    if math.isnan(value):
        return f"\x1b[2m{element}\x1b[0m"
    strength = min(abs(value) / scale, 1.0)
    fade = int(255 - 180 * strength)
    rgb = (255, fade, fade) if value > 0 else (fade, fade, 255)
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m\x1b[38;2;0;0;0m{element}\x1b[0m"


def explain(arguments: argparse.Namespace) -> AttributionOutput:
    """Runs the explanation the arguments describe."""
    model, tokenizer = load(arguments.model)
    kwargs = {"granularity": arguments.granularity, "progress": False}
    if arguments.n_perturbations is not None and arguments.method in SAMPLED:
        kwargs["n_perturbations"] = arguments.n_perturbations
    explainer = getattr(interpreto, METHODS[arguments.method])(model, tokenizer, **kwargs)
    target = arguments.target
    if not is_classifier(model):
        return explainer(arguments.text, target, max_new_tokens=arguments.max_new_tokens)[0]
    if target is not None and target.lstrip("-").isdigit():
        target = int(target)  # a class index; anything else is a label name
    return explainer(arguments.text, targets=target)[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `interpreto` command; returns the exit status.

    Examples:
        >>> from interpreto.cli import build_parser
        >>> build_parser().parse_args(["explain", "my-model", "a text", "--method", "occlusion"]).method
        'occlusion'
    """
    arguments = build_parser().parse_args(argv)
    try:
        output = explain(arguments)
    except (OSError, ValueError, TypeError, IndexError) as error:
        print(f"interpreto: {error}", file=sys.stderr)
        return 2
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render(output, color))
    if arguments.html:
        print(f"wrote {interpreto.save_html(output, arguments.html)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
