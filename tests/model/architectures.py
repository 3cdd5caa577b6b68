"""Tiny random models of every supported architecture, built from configs in code (no Hub, no file)."""

from __future__ import annotations

import functools

import transformers as tf

from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer, gpt2_style_tokenizer, llama_style_tokenizer
from interpreto.zoo.tiny import seeded_model

HIDDEN = 32
SMALL = {"hidden_size": HIDDEN, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
DECODER = {**SMALL, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}


def _configs(tokenizer) -> dict[str, tuple]:
    """name -> (config, base class, head class), sized to ``tokenizer``."""
    common = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "initializer_range": 0.2,
    }
    encoder = {**common, **SMALL, "max_position_embeddings": 130}
    return {
        "bert": (tf.BertConfig(**encoder), tf.BertModel, tf.BertForSequenceClassification),
        "distilbert": (
            tf.DistilBertConfig(**common, dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=64),
            tf.DistilBertModel,
            tf.DistilBertForSequenceClassification,
        ),
        "roberta": (tf.RobertaConfig(**encoder), tf.RobertaModel, tf.RobertaForSequenceClassification),
        "deberta-v2": (
            tf.DebertaV2Config(**encoder, relative_attention=True, pos_att_type=["p2c", "c2p"]),
            tf.DebertaV2Model,
            tf.DebertaV2ForSequenceClassification,
        ),
        "electra": (
            tf.ElectraConfig(**encoder, embedding_size=HIDDEN),
            tf.ElectraModel,
            tf.ElectraForSequenceClassification,
        ),
        "albert": (
            tf.AlbertConfig(**encoder, embedding_size=16),
            tf.AlbertModel,
            tf.AlbertForSequenceClassification,
        ),
        "gpt2": (
            tf.GPT2Config(**common, n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=128),
            tf.GPT2Model,
            tf.GPT2LMHeadModel,
        ),
        "gpt-neo": (
            tf.GPTNeoConfig(
                **common,
                hidden_size=HIDDEN,
                num_layers=2,
                num_heads=2,
                attention_types=[[["global", "local"], 1]],
                window_size=8,
                max_position_embeddings=128,
            ),
            tf.GPTNeoModel,
            tf.GPTNeoForCausalLM,
        ),
        "llama": (tf.LlamaConfig(**common, **DECODER), tf.LlamaModel, tf.LlamaForCausalLM),
        "mistral": (tf.MistralConfig(**common, **DECODER), tf.MistralModel, tf.MistralForCausalLM),
        "qwen2": (tf.Qwen2Config(**common, **DECODER), tf.Qwen2Model, tf.Qwen2ForCausalLM),
        "gemma": (tf.GemmaConfig(**common, **DECODER, head_dim=8), tf.GemmaModel, tf.GemmaForCausalLM),
        "phi": (
            tf.PhiConfig(**common, **{**DECODER, "num_key_value_heads": 4}),
            tf.PhiModel,
            tf.PhiForCausalLM,
        ),
        "t5-encoder": (
            tf.T5Config(**common, d_model=HIDDEN, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
            tf.T5EncoderModel,
            None,
        ),
    }


TOKENIZER_KIND = {
    "bert": "bert",
    "distilbert": "bert",
    "roberta": "bert",
    "deberta-v2": "bert",
    "electra": "bert",
    "albert": "bert",
    "gpt2": "gpt2",
    "gpt-neo": "gpt2",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "gemma": "llama",
    "phi": "llama",
    "t5-encoder": "llama",
}
ARCHITECTURES = list(TOKENIZER_KIND)


@functools.cache
def tokenizer_for(kind: str, padding_side: str = "right"):
    """A fresh in-code tokenizer of the given kind (cached: tests must not modify it)."""
    if kind == "bert":
        return bert_wordpiece_tokenizer(padding_side=padding_side)
    if kind == "gpt2":
        return gpt2_style_tokenizer(padding_side=padding_side)
    return llama_style_tokenizer(padding_side=padding_side)


@functools.cache
def tiny_model(name: str, head: bool = False, padding_side: str = "right"):
    """``(model, tokenizer)`` for architecture ``name``: the base model, or the classifier / causal-LM head one."""
    tokenizer = tokenizer_for(TOKENIZER_KIND[name], padding_side)
    config, base_class, head_class = _configs(tokenizer)[name]
    model_class = head_class if head and head_class is not None else base_class
    return seeded_model(model_class, config, seed=0), tokenizer
