"""Loading fitted concepts: our own folders (`ConceptExplainer.save`), and pretrained SAEs in the SAELens and
sparsify layouts.

| layout | files | read as |
|---|---|---|
| interpreto | `config.json` (`"format": "interpreto-concepts"`, class, parameters) + `concepts.safetensors` | that class |
| SAELens | `cfg.json` + `sae_weights.safetensors` (`W_enc (d_in, d_sae)`, `b_enc`, `W_dec (d_sae, d_in)`, `b_dec`, optional `threshold`) | `interpreto.concepts.sae.formats` |
| sparsify | `cfg.json` + `sae.safetensors` (`encoder.weight (d_sae, d_in)`, `encoder.bias`, `W_dec`, `b_dec`) | `interpreto.concepts.sae.formats` |

Nothing is unpickled: configurations are JSON, tensors safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

from interpreto.concepts.base import CONFIG_FILE, FORMAT, TENSORS_FILE, ConceptExplainer
from interpreto.model.split_points import ModelWithSplitPoints


def concept_classes() -> dict[str, type[ConceptExplainer]]:
    """Every concept explainer class exported by `interpreto.concepts`, by name."""
    import interpreto.concepts as concepts

    classes = (getattr(concepts, name) for name in concepts.__all__)
    return {
        cls.__name__: cls for cls in classes if isinstance(cls, type) and issubclass(cls, ConceptExplainer)
    }


def load_concepts(
    path: str | Path,
    model_with_split_points: ModelWithSplitPoints | None = None,
    split_point: int | str | None = None,
    device: str | None = None,
) -> ConceptExplainer:
    """Loads fitted concepts from a folder written by `save`, or a pretrained SAE (SAELens or sparsify layout).

    Args:
        path: the folder.
        model_with_split_points: the split model to attach (for interpretation and importance); optional.
        split_point: the split point the concepts belong to; None keeps the saved one (SAELens' `hook_name`,
            sparsify's folder name, or ours).
        device: where encoding runs; None keeps the saved device for our folders, CPU for pretrained SAEs.

    Raises:
        FileNotFoundError: the folder holds none of the three layouts.

    Examples:
        >>> import tempfile, torch
        >>> from interpreto.concepts import NeuronsAsConcepts, load_concepts
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = NeuronsAsConcepts(None).fit(torch.randn(4, 3)).save(folder)
        ...     type(load_concepts(folder)).__name__
        'NeuronsAsConcepts'
    """
    folder = Path(path)
    if (folder / CONFIG_FILE).is_file():
        return _load_ours(folder, model_with_split_points, split_point, device)
    if (folder / "cfg.json").is_file():
        from interpreto.concepts.sae.formats import load_pretrained_sae

        return load_pretrained_sae(folder, model_with_split_points, split_point, device)
    raise FileNotFoundError(
        f"{folder} holds no saved concepts: expected {CONFIG_FILE} + {TENSORS_FILE} (ConceptExplainer.save), or "
        f"cfg.json + sae_weights.safetensors (SAELens) or cfg.json + sae.safetensors (sparsify)."
    )


def _load_ours(
    folder: Path,
    model_with_split_points: ModelWithSplitPoints | None,
    split_point: int | str | None,
    device: str | None,
) -> ConceptExplainer:
    from safetensors.torch import load_file

    config = json.loads((folder / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT:
        raise ValueError(
            f"{folder / CONFIG_FILE} is not an interpreto concepts file (format {config.get('format')!r})."
        )
    classes = concept_classes()
    if config["class"] not in classes:
        raise ValueError(f"{folder}: unknown concept class {config['class']!r}; known: {sorted(classes)}.")
    params = dict(config["params"])
    if split_point is not None:
        params["split_point"] = split_point
    if device is not None:
        params["device"] = device
    explainer = classes[config["class"]](model_with_split_points, **params)
    return explainer.restore(config, load_file(str(folder / TENSORS_FILE)))
