"""The result of explaining one input, and its JSON file format.

Files hold a versioned JSON document (gzip when the path ends with `.gz`): the text, elements, offsets,
targets, scores and attributions, never model tensors and never pickle.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

FORMAT = "interpreto.attribution"
FORMAT_VERSION = 1


@dataclass
class AttributionOutput:
    """Attributions of one input.

    Attributes:
        text: the explained text (the prompt for generation).
        elements: the words, tokens or sentences shown to a reader (for generation: prompt elements, then
            the continuation tokens).
        attributions: float32 `(n_targets, n_elements)`, signed where the method is signed; NaN where an
            element cannot influence a target (generation: the scored token and those after it).
        targets: class ids, or continuation token ids for generation.
        target_names: label names, or continuation token strings.
        scores: `(n_targets,)` the explained score of each target on the real input.
        offsets: character span of each element in `text` (None for continuation tokens).
        method: the attribution method's name.
        granularity: `"token"`, `"word"`, `"sentence"` or `"all_tokens"`.
        task: `"classification"` or `"generation"`.
        score: the name of the explained score (`"logits"`, `"log_probabilities"`, ...).
        convergence_delta: `(n_targets,)` for methods with a completeness axiom (IntegratedGradients):
            sum of attributions minus (f(x) - f(baseline)).
        n_prompt_elements: for generation, how many elements belong to the prompt.
        contrasts: contrast token ids when the explained score is score(target) - score(contrast).
        contrast_names: their token strings.
        source: the input as given to the explainer (a text, a pair as a dict, or a chat), so that metrics can
            run the model on it again; None when unknown (then `text` is used).
        split_point: the layer (module path) whose activations were attributed, None for the input embeddings
            (or token ids).

    Examples:
        >>> import torch
        >>> from interpreto import AttributionOutput
        >>> out = AttributionOutput(text="Nice film", elements=["Nice", "film"],
        ...     attributions=torch.tensor([[0.7, 0.1]]), targets=[1], target_names=["positive"],
        ...     scores=torch.tensor([2.3]))
        >>> out.top(1)
        [('Nice', 0.699999988079071)]
    """

    text: str
    elements: list[str]
    attributions: torch.Tensor
    targets: list[int]
    target_names: list[str]
    scores: torch.Tensor
    offsets: list[tuple[int, int] | None] = field(default_factory=list)
    method: str = ""
    granularity: str = "word"
    task: str = "classification"
    score: str = "logits"
    convergence_delta: torch.Tensor | None = None
    n_prompt_elements: int | None = None
    contrasts: list[int] | None = None
    contrast_names: list[str] | None = None
    source: str | dict | list | None = None
    split_point: str | None = None

    def top(self, k: int = 5, target: int = 0) -> list[tuple[str, float]]:
        """The `k` elements with the largest attribution for the target at row `target`."""
        row = self.attributions[target]
        order = torch.argsort(torch.nan_to_num(row, nan=-math.inf), descending=True)[:k]
        return [(self.elements[i], float(row[i])) for i in order.tolist()]

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN written as null)."""
        delta = self.convergence_delta
        return {
            "text": self.text,
            "elements": list(self.elements),
            "offsets": [list(span) if span is not None else None for span in self.offsets],
            "targets": [int(t) for t in self.targets],
            "target_names": list(self.target_names),
            "scores": _floats(self.scores),
            "attributions": [_floats(row) for row in self.attributions],
            "convergence_delta": None if delta is None else _floats(delta),
            "method": self.method,
            "granularity": self.granularity,
            "task": self.task,
            "score": self.score,
            "n_prompt_elements": self.n_prompt_elements,
            "contrasts": self.contrasts,
            "contrast_names": self.contrast_names,
            "source": self.source,
            "split_point": self.split_point,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AttributionOutput:
        """Rebuilds an output from `to_dict()`'s result."""
        delta = data.get("convergence_delta")
        return cls(
            text=data["text"],
            elements=list(data["elements"]),
            attributions=_tensor(data["attributions"]).reshape(len(data["targets"]), len(data["elements"])),
            targets=list(data["targets"]),
            target_names=list(data["target_names"]),
            scores=_tensor(data["scores"]),
            offsets=[tuple(span) if span is not None else None for span in data.get("offsets", [])],
            method=data.get("method", ""),
            granularity=data.get("granularity", "word"),
            task=data.get("task", "classification"),
            score=data.get("score", "logits"),
            convergence_delta=None if delta is None else _tensor(delta),
            n_prompt_elements=data.get("n_prompt_elements"),
            contrasts=data.get("contrasts"),
            contrast_names=data.get("contrast_names"),
            source=data.get("source"),
            split_point=data.get("split_point"),
        )

    def save(self, path: str | Path) -> None:
        """Writes this explanation as JSON (gzip if `path` ends with `.gz`)."""
        save_explanations([self], path)

    @classmethod
    def load(cls, path: str | Path) -> AttributionOutput:
        """Reads a file written by `save` holding one explanation."""
        outputs = load_explanations(path)
        if len(outputs) != 1:
            raise ValueError(f"{path} holds {len(outputs)} explanations: read it with load_explanations().")
        return outputs[0]

    def to_html(self) -> str:
        """A standalone HTML page coloring each element by its signed attribution."""
        from interpreto.visualization.html import to_html

        return to_html([self])

    def to_png(self, path: str | Path) -> Path:
        """Writes a static PNG figure of this explanation (see `interpreto.visualization.figures`)."""
        from interpreto.visualization.figures import save_figure

        return save_figure(self, path, format="png")

    def to_svg(self, path: str | Path) -> Path:
        """Writes a static SVG figure of this explanation, labels kept as text."""
        from interpreto.visualization.figures import save_figure

        return save_figure(self, path, format="svg")

    def _repr_html_(self) -> str:
        from interpreto.visualization.html import render_fragment

        return render_fragment([self])


def save_explanations(outputs: list[AttributionOutput], path: str | Path) -> None:
    """Writes explanations to a versioned JSON file (gzip when `path` ends with `.gz`).

    Examples:
        >>> import tempfile, torch
        >>> from interpreto import AttributionOutput, save_explanations, load_explanations
        >>> out = AttributionOutput(text="a b", elements=["a", "b"], attributions=torch.ones(1, 2),
        ...     targets=[0], target_names=["x"], scores=torch.zeros(1))
        >>> path = tempfile.mkdtemp() + "/explanations.json.gz"
        >>> save_explanations([out], path)
        >>> load_explanations(path)[0].elements
        ['a', 'b']
    """
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "explanations": [output.to_dict() for output in outputs],
    }
    payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = Path(path)
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)


def load_explanations(path: str | Path) -> list[AttributionOutput]:
    """Reads explanations written by `save_explanations` or `AttributionOutput.save`."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    document = json.loads(raw.decode("utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path} is not an interpreto attribution file.")
    if document.get("version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {document['version']}, newer than this interpreto reads "
            f"({FORMAT_VERSION}): upgrade interpreto."
        )
    return [AttributionOutput.from_dict(item) for item in document["explanations"]]


def _floats(values: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.detach().float().cpu().flatten().tolist()]


def _tensor(values) -> torch.Tensor:
    flat = values
    while flat and isinstance(flat[0], list):
        flat = [v for row in flat for v in row]
    return torch.tensor([math.nan if v is None else v for v in flat], dtype=torch.float32)
