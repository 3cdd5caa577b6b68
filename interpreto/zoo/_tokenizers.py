"""Tokenizers built in code with the ``tokenizers`` library: no file is read or downloaded."""

from __future__ import annotations

import functools

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

from interpreto.zoo._words import BERT_SPECIAL_TOKENS, bpe_training_corpus, wordpiece_vocabulary

MODEL_MAX_LENGTH = 128
BPE_VOCAB_SIZE = 500
GPT2_END_OF_TEXT = "<|endoftext|>"
LLAMA_BOS, LLAMA_EOS, LLAMA_PAD = "<s>", "</s>", "<pad>"
CHAT_START, CHAT_END = "<|im_start|>", "<|im_end|>"

# ChatML, as in SmolLM2 and Qwen2: one "<|im_start|>role\ncontent<|im_end|>\n" block per message.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def bert_wordpiece_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    """Return an uncased BERT-style WordPiece tokenizer over the vocabulary of ``_words``."""
    vocabulary = {token: token_id for token_id, token in enumerate(wordpiece_vocabulary())}
    backend = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        lowercase=True, clean_text=True, handle_chinese_chars=True
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocabulary["[CLS]"]), ("[SEP]", vocabulary["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    pad, unk, cls, sep, mask = BERT_SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
        padding_side=padding_side,
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


@functools.cache
def _trained_byte_level_bpe(special_tokens: tuple[str, ...]) -> str:
    """Train a byte-level BPE on the fixed corpus and return it serialized (trained once per process)."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(bpe_training_corpus(), trainer=trainer)
    return backend.to_str()


def gpt2_style_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    """Return a GPT-2-like byte-level BPE: ``<|endoftext|>`` only, no pad token, no BOS added."""
    backend = Tokenizer.from_str(_trained_byte_level_bpe((GPT2_END_OF_TEXT,)))
    # As in GPT-2's tokenizer.json: offsets keep the leading space of " word".
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=GPT2_END_OF_TEXT,
        eos_token=GPT2_END_OF_TEXT,
        unk_token=GPT2_END_OF_TEXT,
        add_bos_token=False,
        padding_side=padding_side,
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
    )


def llama_style_tokenizer(
    add_bos: bool = True, padding_side: str = "left", pad_token: bool = True, chat_template: bool = True
) -> PreTrainedTokenizerFast:
    """Return a Llama-like byte-level BPE with ``<s>``/``</s>``, optional ``<pad>`` and a ChatML template."""
    backend = Tokenizer.from_str(_trained_byte_level_bpe((LLAMA_BOS, LLAMA_EOS)))
    chat_markers = [AddedToken(marker, special=True, normalized=False) for marker in (CHAT_START, CHAT_END)]
    backend.add_special_tokens(chat_markers)
    if pad_token:
        backend.add_special_tokens([AddedToken(LLAMA_PAD, special=True, normalized=False)])
    bos_id = backend.token_to_id(LLAMA_BOS)
    # transformers rebuilds this same template from ``add_bos_token``; passing both keeps the tokenizer's
    # ``add_bos_token`` attribute truthful while the template states the behaviour explicitly.
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{LLAMA_BOS}:0 $A:0", pair=f"{LLAMA_BOS}:0 $A:0 {LLAMA_BOS}:1 $B:1",
            special_tokens=[(LLAMA_BOS, bos_id)],
        )  # fmt: skip
    else:
        backend.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=LLAMA_BOS,
        eos_token=LLAMA_EOS,
        pad_token=LLAMA_PAD if pad_token else None,
        add_bos_token=add_bos,
        extra_special_tokens=[CHAT_START, CHAT_END],
        chat_template=CHATML_TEMPLATE if chat_template else None,
        padding_side=padding_side,
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
    )
