"""Pretrained SAE folders: reading the SAELens and sparsify layouts, writing the SAELens one.

SAELens: `cfg.json` (`d_in`, `d_sae`, `architecture`, `hook_name` or `meta.hook_name`, `apply_b_dec_to_input`
(default true), `k` or `activation_fn_kwargs.k` for topk) and `sae_weights.safetensors`
(`W_enc (d_in, d_sae)`, `b_enc (d_sae)`, `W_dec (d_sae, d_in)`, `b_dec (d_in)`, `threshold (d_sae)` for
jumprelu). It encodes `z = act((x - b_dec) @ W_enc + b_enc)`: `"standard"` (ReLU) is read as
`VanillaSAEConcepts`, `"topk"` (the `k` largest of ReLU) as `TopKSAEConcepts`, `"jumprelu"`
(`ReLU(pre) * (pre > threshold)`) as `JumpReLUSAEConcepts`.

sparsify: `cfg.json` (`k`, `num_latents` or `expansion_factor`, `d_in`) and `sae.safetensors`
(`encoder.weight (d_sae, d_in)`, `encoder.bias`, `W_dec (d_sae, d_in)`, `b_dec`). It encodes
`z = TopK_k(ReLU(encoder(x - b_dec)))`: read as `TopKSAEConcepts`.

Both decode `z @ W_dec + b_dec`. SAELens' `apply_b_dec_to_input: false` (`z = act(x @ W_enc + b_enc)`) is read
by folding `b_dec @ W_enc` into `b_enc`, the same map. Not supported (a `ValueError` says so): SAELens'
run-time normalisations `constant_norm_rescale` and `layer_norm` and its other architectures (gated, ...), and
sparsify's transcoders, skip connections and `groupmax` activation. `expected_average_only_in` needs nothing
(SAELens folds that scaling into the weights it saves). Weights are read as float32; decoder rows are taken as
saved (not renormalised), so `dictionary` is `W_dec` as saved.

The split point is the one given, else the saved name: SAELens' `hook_name` (a TransformerLens name;
`blocks.N.hook_resid_post` maps to block `N` and `blocks.N.hook_resid_pre` to block `N - 1` when a split model
is given) or the sparsify folder's name (`layers.N` maps to block `N` unless it is a module path of the
model).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from interpreto.concepts.sae.base import SAEConcepts
from interpreto.concepts.sae.batch_topk import BatchTopKSAEConcepts
from interpreto.concepts.sae.jump_relu import JumpReLUSAEConcepts
from interpreto.concepts.sae.topk import TopKSAEConcepts
from interpreto.concepts.sae.vanilla import VanillaSAEConcepts
from interpreto.model.split_points import ModelWithSplitPoints

SAELENS_WEIGHTS, SPARSIFY_WEIGHTS, CONFIG = "sae_weights.safetensors", "sae.safetensors", "cfg.json"


def load_pretrained_sae(
    folder: str | Path,
    model_with_split_points: ModelWithSplitPoints | None = None,
    split_point: int | str | None = None,
    device: str | torch.device | None = None,
) -> SAEConcepts:
    """Reads a SAELens or sparsify SAE folder as a fitted SAE explainer (usually through `load_concepts`).

    Args:
        folder: the folder holding `cfg.json` and the weights.
        model_with_split_points: the split model to attach; optional.
        split_point: the split point the SAE reads; None takes the saved name (see the module docstring).
        device: where encoding runs; None runs on CPU.

    Raises:
        FileNotFoundError: no `cfg.json` with `sae_weights.safetensors` or `sae.safetensors`.
        ValueError: a configuration this reader does not support, or weights of the wrong shape.

    Examples:
        >>> import tempfile, torch
        >>> from interpreto.concepts import TopKSAEConcepts, load_concepts
        >>> from interpreto.concepts.sae.formats import save_saelens
        >>> sae = TopKSAEConcepts(None, 8, top_k=2).fit(torch.randn(64, 4), nb_epochs=1, progress=False)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     loaded = load_concepts(save_saelens(sae, folder))
        >>> rows = torch.ones(1, 4)
        >>> type(loaded).__name__, bool(torch.equal(loaded.encode(rows), sae.encode(rows)))
        ('TopKSAEConcepts', True)
    """
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder} holds no {CONFIG}: not a SAELens or sparsify SAE folder.")
    cfg = json.loads((folder / CONFIG).read_text())
    if (folder / SAELENS_WEIGHTS).is_file():
        explainer, tensors, name = _saelens(
            cfg, _read(folder / SAELENS_WEIGHTS), model_with_split_points, device
        )
    elif (folder / SPARSIFY_WEIGHTS).is_file():
        explainer, tensors = _sparsify(cfg, _read(folder / SPARSIFY_WEIGHTS), model_with_split_points, device)
        name = folder.name
    else:
        raise FileNotFoundError(
            f"{folder} has {CONFIG} but neither {SAELENS_WEIGHTS} (SAELens) nor {SPARSIFY_WEIGHTS} "
            f"(sparsify)."
        )
    point = _split_point(split_point, name, model_with_split_points)
    explainer.split_point = point
    resolved = point
    if model_with_split_points is not None:
        try:
            resolved = explainer.resolved_split_point()
        except ValueError as error:
            raise ValueError(
                f"{folder}: the SAE's split point {point!r}: {error} Pass split_point=."
            ) from None
    return explainer.restore({"split_point": resolved, "input_dim": tensors["W_enc"].shape[0]}, tensors)


def save_saelens(explainer: SAEConcepts, folder: str | Path) -> Path:
    """Writes a fitted SAE in the SAELens layout (`cfg.json` + `sae_weights.safetensors`), float32.

    Vanilla SAEs are written as `"standard"`, TopK as `"topk"`, JumpReLU and BatchTopK as `"jumprelu"` (the
    BatchTopK threshold repeated per concept, as SAELens does), so they load back with the same codes.
    """
    from safetensors.torch import save_file

    explainer._check_fitted()
    architectures = {
        VanillaSAEConcepts: "standard",
        TopKSAEConcepts: "topk",
        JumpReLUSAEConcepts: "jumprelu",
        BatchTopKSAEConcepts: "jumprelu",
    }
    if type(explainer) not in architectures:
        raise TypeError(f"save_saelens writes SAE explainers ({sorted(c.__name__ for c in architectures)}).")
    tensors = {name: value.detach().float().cpu().contiguous() for name, value in explainer.weights_.items()}
    dim, nb_concepts = tensors["W_enc"].shape
    cfg = {
        "architecture": architectures[type(explainer)],
        "d_in": dim,
        "d_sae": nb_concepts,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "hook_name": explainer.fitted_split_point,
        "meta": {"hook_name": explainer.fitted_split_point},
    }
    if isinstance(explainer, TopKSAEConcepts):
        cfg["k"] = explainer.top_k
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(json.dumps(cfg, indent=2))
    save_file(tensors, str(folder / SAELENS_WEIGHTS))
    return folder


def _saelens(
    cfg: dict, weights: dict[str, torch.Tensor], model, device
) -> tuple[SAEConcepts, dict, str | None]:
    architecture = cfg.get("architecture", "standard")
    activation = cfg.get("activation_fn_str", cfg.get("activation_fn", "relu"))
    if architecture == "standard" and activation == "topk":  # SAELens < 6 wrote TopK SAEs as "standard"
        architecture = "topk"
    normalisation = cfg.get("normalize_activations") or "none"
    if normalisation not in ("none", "expected_average_only_in"):
        raise ValueError(
            f"SAELens normalize_activations={normalisation!r} rescales each input at run time; only 'none' "
            f"and 'expected_average_only_in' (folded into the weights) are supported."
        )
    missing = [name for name in ("W_enc", "b_enc", "W_dec", "b_dec") if name not in weights]
    if missing:
        raise ValueError(f"SAELens weights lack {missing}; they hold {sorted(weights)}.")
    tensors = {name: weights[name] for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    dim, nb_concepts = tensors["W_enc"].shape
    if (cfg.get("d_in", dim), cfg.get("d_sae", nb_concepts)) != (dim, nb_concepts):
        raise ValueError(
            f"SAELens cfg says d_in={cfg.get('d_in')}, d_sae={cfg.get('d_sae')} but W_enc has shape "
            f"{(dim, nb_concepts)}."
        )
    if not cfg.get("apply_b_dec_to_input", True):
        # act(x W + b) = act((x - b_dec) W + (b + b_dec W)): one form for every SAE
        tensors["b_enc"] = tensors["b_enc"] + tensors["b_dec"] @ tensors["W_enc"]
    if architecture == "standard":
        explainer: SAEConcepts = VanillaSAEConcepts(model, nb_concepts, device=device)
    elif architecture == "topk":
        k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
        if k is None:
            raise ValueError("SAELens topk cfg has no k (nor activation_fn_kwargs.k).")
        explainer = TopKSAEConcepts(model, nb_concepts, top_k=int(k), device=device)
    elif architecture == "jumprelu":
        if "threshold" not in weights:
            raise ValueError("SAELens jumprelu weights lack 'threshold'.")
        tensors["threshold"] = weights["threshold"]
        explainer = JumpReLUSAEConcepts(model, nb_concepts, device=device)
    else:
        raise ValueError(
            f"SAELens architecture {architecture!r} is not supported: 'standard', 'topk' and 'jumprelu' are."
        )
    return explainer, tensors, cfg.get("hook_name") or (cfg.get("meta") or {}).get("hook_name")


def _sparsify(cfg: dict, weights: dict[str, torch.Tensor], model, device) -> tuple[SAEConcepts, dict]:
    for key in ("transcode", "skip_connection"):
        if cfg.get(key, False):
            raise ValueError(f"sparsify cfg has {key}=true: only plain sparse autoencoders are supported.")
    if cfg.get("activation", "topk") != "topk":
        raise ValueError(f"sparsify activation {cfg.get('activation')!r} is not supported: only 'topk' is.")
    needed = ("encoder.weight", "encoder.bias", "W_dec", "b_dec")
    missing = [name for name in needed if name not in weights]
    if missing:
        raise ValueError(f"sparsify weights lack {missing}; they hold {sorted(weights)}.")
    nb_concepts, dim = weights["encoder.weight"].shape
    expected = cfg.get("num_latents") or dim * cfg.get("expansion_factor", 0)
    if expected != nb_concepts or cfg.get("d_in", dim) != dim:
        raise ValueError(
            f"sparsify cfg says d_in={cfg.get('d_in')}, num_latents={cfg.get('num_latents')}, "
            f"expansion_factor={cfg.get('expansion_factor')} but encoder.weight has shape "
            f"{(nb_concepts, dim)}."
        )
    if "k" not in cfg:
        raise ValueError("sparsify cfg has no k.")
    tensors = {
        "W_enc": weights["encoder.weight"].T.contiguous(),
        "b_enc": weights["encoder.bias"],
        "W_dec": weights["W_dec"],
        "b_dec": weights["b_dec"],
    }
    return TopKSAEConcepts(model, nb_concepts, top_k=int(cfg["k"]), device=device), tensors


def _split_point(split_point: int | str | None, name: str | None, model) -> int | str | None:
    """The split point given, else the saved name, mapped to a block index when a split model is given."""
    if split_point is not None or name is None or model is None:
        return split_point if split_point is not None else name
    if match := re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", name):
        block = int(match.group(1)) - (match.group(2) == "pre")
        if block >= 0:
            return block
    if match := re.fullmatch(r"(?:.*\.)?layers\.(\d+)", name):
        return (
            name if any(module == name for module, _ in model.model.named_modules()) else int(match.group(1))
        )
    return name


def _read(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {name: value.float() for name, value in load_file(str(path)).items()}
