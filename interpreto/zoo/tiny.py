"""Tiny randomly initialized models with in-code tokenizers, for fast unit tests.

Each builder takes well under a second, reads no file and is deterministic: the same ``seed``
gives the same weights, and the tokenizers do not depend on the seed at all. The global torch
random state is left untouched. Weights are drawn with ``initializer_range=0.2`` (ten times the
default) so that outputs visibly depend on the input.
"""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from interpreto.zoo._tokenizers import (
    MODEL_MAX_LENGTH,
    bert_wordpiece_tokenizer,
    gpt2_style_tokenizer,
    llama_style_tokenizer,
)

SENTIMENT_ID2LABEL = {0: "negative", 1: "positive"}
# Ten times the transformers default: with 0.02 a tiny BERT gives the same logits (to 1e-4) for
# every input, which leaves attribution tests nothing to measure.
INITIALIZER_RANGE = 0.2


def seeded_model(model_class: type[PreTrainedModel], config: PretrainedConfig, seed: int) -> PreTrainedModel:
    """Build ``model_class(config)`` with weights drawn from ``seed``, in eval mode, float32."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    return model.to(torch.float32).eval()


def tiny_bert_config(vocab_size: int, num_labels: int = 2) -> BertConfig:
    """Return the configuration shared by the tiny BERT classifiers (hidden 32, 2 layers, 2 heads)."""
    if num_labels == 2:
        id2label = SENTIMENT_ID2LABEL
    else:
        id2label = {label_id: f"LABEL_{label_id}" for label_id in range(num_labels)}
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MODEL_MAX_LENGTH,
        initializer_range=INITIALIZER_RANGE,
        type_vocab_size=2,
        pad_token_id=0,
        num_labels=num_labels,
        id2label=id2label,
        label2id={label: label_id for label_id, label in id2label.items()},
    )


def tiny_bert_classifier(
    num_labels: int = 2, seed: int = 0, padding_side: str = "right"
) -> tuple[BertForSequenceClassification, PreTrainedTokenizerFast]:
    """Return a randomly initialized two-layer BERT classifier and its uncased WordPiece tokenizer.

    The tokenizer is BERT-like: lowercase, punctuation split from words, ``[CLS] ... [SEP]`` around
    a text and ``[CLS] A [SEP] B [SEP]`` with ``token_type_ids`` for pairs. Its vocabulary holds a
    few hundred common English words, every letter and continuation pieces (``##s``, ``##able``, ...),
    so that rarer words split into several tokens: ``"unbelievable"`` -> ``un ##believ ##able``.

    Args:
        num_labels: Number of classes; labels are ``negative``/``positive`` for 2, else ``LABEL_k``.
        seed: Seed of the weight initialization.
        padding_side: ``"right"`` or ``"left"``.

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU.

    Examples:
        >>> model, tokenizer = tiny_bert_classifier()
        >>> tokenizer.tokenize("Unbelievable, truly!")
        ['un', '##believ', '##able', ',', 't', '##r', '##u', '##ly', '!']
        >>> model(**tokenizer("a good movie", return_tensors="pt")).logits.shape
        torch.Size([1, 2])
    """
    tokenizer = bert_wordpiece_tokenizer(padding_side=padding_side)
    model = seeded_model(BertForSequenceClassification, tiny_bert_config(len(tokenizer), num_labels), seed)
    return model, tokenizer


def tiny_gpt2(seed: int = 0, padding_side: str = "right") -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """Return a randomly initialized two-layer GPT-2 and a GPT-2-like byte-level BPE tokenizer.

    Like the real GPT-2 tokenizer, it has a single special token ``<|endoftext|>`` (BOS, EOS and
    UNK), no pad token, and adds nothing to a text: no BOS, no EOS. The BPE (500 tokens) is trained
    in code on a fixed corpus of generated sentences.

    Args:
        seed: Seed of the weight initialization.
        padding_side: ``"right"`` or ``"left"`` (padding needs a pad token set by the caller).

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU.

    Examples:
        >>> model, tokenizer = tiny_gpt2()
        >>> tokenizer.pad_token is None
        True
        >>> tokenizer.convert_ids_to_tokens(tokenizer("The dog")["input_ids"])
        ['The', 'Ġdog']
    """
    tokenizer = gpt2_style_tokenizer(padding_side=padding_side)
    end_of_text_id = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=MODEL_MAX_LENGTH,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=end_of_text_id,
        eos_token_id=end_of_text_id,
    )
    return seeded_model(GPT2LMHeadModel, config, seed), tokenizer


def tiny_llama(
    seed: int = 0,
    add_bos: bool = True,
    padding_side: str = "left",
    pad_token: bool = True,
    chat_template: bool = True,
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Return a randomly initialized two-layer Llama and a Llama-like byte-level BPE tokenizer.

    The tokenizer has ``<s>``/``</s>``, optionally ``<pad>``, and the ChatML markers
    ``<|im_start|>``/``<|im_end|>`` as special added tokens; with ``chat_template`` it renders
    ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message (plus ``<|im_start|>assistant\\n`` with
    ``add_generation_prompt=True``). The attention uses grouped queries (4 heads, 2 key-value heads).

    Args:
        seed: Seed of the weight initialization.
        add_bos: Whether tokenizing a text prepends ``<s>``.
        padding_side: ``"left"`` (usual for generation) or ``"right"``.
        pad_token: Whether the tokenizer has a ``<pad>`` token.
        chat_template: Whether the tokenizer has a chat template.

    Returns:
        ``(model, tokenizer)``, the model in eval mode, float32, on CPU.

    Examples:
        >>> model, tokenizer = tiny_llama()
        >>> tokenizer.convert_ids_to_tokens(tokenizer("The dog")["input_ids"])
        ['<s>', 'The', 'Ġdog']
        >>> tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
        '<|im_start|>user\\nHi<|im_end|>\\n'
    """
    tokenizer = llama_style_tokenizer(
        add_bos=add_bos, padding_side=padding_side, pad_token=pad_token, chat_template=chat_template
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=MODEL_MAX_LENGTH,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return seeded_model(LlamaForCausalLM, config, seed), tokenizer
