"""A classifier whose logits are a known sum of per-word effects: ground truth for attribution methods.

`additive_classifier({"great": 2.0, "awful": -3.0})` returns a model whose positive logit is
``bias + sum over tokens of effect[token]``. Removing a word changes the logit by exactly its effect, so the
closed forms of most attribution methods are known:

- occlusion (any replacement token with effect 0, such as ``[MASK]``): ``f(x) - f(x without w) = effect[w]``;
- Shapley values, KernelSHAP and LIME coefficients (for removal of elements): ``effect[w]`` summed over the
  element's tokens (the game is additive, every method that is exact on linear functions recovers it);
- integrated gradients and input x gradient (with the ``[MASK]`` baseline): the same, because the input
  embedding of a token *is* its effect vector and the logits are linear in it;
- saliency: 1 for every token, since the gradient of logit c with respect to any token's embedding is the
  unit vector of class c.

Effects belong to tokens: a word split into pieces gets the sum of its pieces' effects (``"greatest"`` is
``great ##est``, so it carries the effect of ``"great"``). Words without an effect (every other word of the tiny BERT vocabulary, letters and pieces of unknown words)
and the special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``) have effect 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from tokenizers import Tokenizer, models
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import SequenceClassifierOutput

from interpreto.zoo._tokenizers import bert_wordpiece_tokenizer
from interpreto.zoo._words import BERT_SPECIAL_TOKENS, wordpiece_vocabulary
from interpreto.zoo.tiny import SENTIMENT_ID2LABEL

Effect = float | Sequence[float]


class AdditiveConfig(PretrainedConfig):
    """Configuration of `AdditiveForSequenceClassification`: a vocabulary size and a number of labels."""

    model_type = "interpreto-additive"

    def __init__(self, vocab_size: int = 1, max_position_embeddings: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings


class AdditiveForSequenceClassification(PreTrainedModel):
    """Logits `bias + sum_t mask_t * E[token_t]`: each token adds its row of the effect matrix E.

    The input embedding of a token is its effect vector (hidden size = number of labels), so the model takes
    `input_ids` or `inputs_embeds`, and positions with `attention_mask` 0 add nothing. `token_type_ids` and
    other BERT arguments are accepted and ignored.
    """

    config_class = AdditiveConfig
    base_model_prefix = "additive"

    def __init__(self, config: AdditiveConfig):
        super().__init__(config)
        self.effects = nn.Embedding(config.vocab_size, config.num_labels)
        self.bias = nn.Parameter(torch.zeros(config.num_labels))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.zeros_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.effects

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.effects = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.effects(input_ids)
        if attention_mask is not None:
            inputs_embeds = inputs_embeds * attention_mask[..., None].to(inputs_embeds.dtype)
        logits = self.bias + inputs_embeds.sum(dim=1)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _effect_vector(value: Effect, num_labels: int, argument: str) -> torch.Tensor:
    """A float e becomes (-e, +e, 0, ...) (or (e,) for one label); a sequence is taken as per-class values."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        vector = torch.zeros(num_labels, dtype=torch.float64)
        if num_labels == 1:
            vector[0] = value
        else:
            vector[0], vector[1] = -value, value
        return vector
    vector = torch.as_tensor(value, dtype=torch.float64)
    if vector.shape != (num_labels,):
        raise ValueError(
            f"{argument} must be a float or a sequence of num_labels={num_labels} floats, got {value!r}."
        )
    return vector


def _tokenizer_with_words(words: list[str]) -> PreTrainedTokenizerFast:
    """The tiny BERT WordPiece tokenizer with `words` appended to its vocabulary (special token ids unchanged)."""
    base = bert_wordpiece_tokenizer()
    vocabulary = list(dict.fromkeys(wordpiece_vocabulary() + words))
    backend = Tokenizer.from_str(base.backend_tokenizer.to_str())
    backend.model = models.WordPiece(
        {token: token_id for token_id, token in enumerate(vocabulary)},
        unk_token="[UNK]",
        max_input_chars_per_word=100,
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **base.special_tokens_map,
        padding_side=base.padding_side,
        model_max_length=base.model_max_length,
        model_input_names=base.model_input_names,
    )


def additive_classifier(
    effects: Mapping[str, Effect], bias: Effect = 0.0, num_labels: int = 2
) -> tuple[AdditiveForSequenceClassification, PreTrainedTokenizerFast]:
    """Return a classifier whose logits add up known per-word effects, and its WordPiece tokenizer.

    For `num_labels=2` and float effects, the logits of a text with tokens `t_1..t_T` are::

        logit_1 = bias + sum_t effect[t]      ("positive")
        logit_0 = -logit_1                    ("negative")

    Any word not in `effects` (the other words of the tiny BERT vocabulary, pieces of unknown words) and every
    special token, `[MASK]` included, has effect 0. So removing a word (replacing it by `[MASK]`) lowers
    `logit_1` by exactly its effect: occlusion, Shapley values, KernelSHAP and LIME coefficients all equal
    `effect[word]` (for each occurrence of the word), and `f(x) - f(all masked) = sum of effects`.

    Args:
        effects: word -> effect. A word is one lowercase token of the tokenizer (a word of letters and digits,
            or a punctuation character); it is added to the tiny BERT vocabulary if missing. An effect is a
            float e, meaning `+e` on class 1 and `-e` on class 0 (0 on further classes; `e` on the only class
            when `num_labels=1`), or a sequence of `num_labels` floats, one effect per class.
        bias: the logits of an empty text, in the same form as an effect.
        num_labels: number of classes; labels are `negative`/`positive` for 2, else `LABEL_k`.

    Returns:
        `(model, tokenizer)`: an `AdditiveForSequenceClassification` in eval mode, float32, on CPU, and a
        BERT-like uncased WordPiece tokenizer (`[CLS] ... [SEP]`, mask token `[MASK]`).

    Examples:
        >>> from interpreto.zoo.additive import additive_classifier
        >>> model, tokenizer = additive_classifier({"great": 2.0, "awful": -3.0}, bias=0.5)
        >>> model(**tokenizer("a great great movie", return_tensors="pt")).logits
        tensor([[-4.5000,  4.5000]], grad_fn=<AddBackward0>)
    """
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}.")
    if not isinstance(effects, Mapping):
        raise TypeError(f"effects must be a dict word -> effect, got {type(effects).__name__}.")
    special = [word for word in effects if word in BERT_SPECIAL_TOKENS]
    if special:
        raise ValueError(f"effects: special tokens {special} always have effect 0; remove them from effects.")
    tokenizer = _tokenizer_with_words(list(effects))
    for word in effects:
        if not isinstance(word, str) or tokenizer.tokenize(word) != [word]:
            raise ValueError(
                f"effects: {word!r} is not a single token: use lowercase words of letters and digits, or a "
                f"single punctuation character, without spaces."
            )
    id2label = SENTIMENT_ID2LABEL if num_labels == 2 else {i: f"LABEL_{i}" for i in range(num_labels)}
    config = AdditiveConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        num_labels=num_labels,
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
    )
    model = AdditiveForSequenceClassification(config)
    with torch.no_grad():
        model.effects.weight.zero_()
        for word, effect in effects.items():
            vector = _effect_vector(effect, num_labels, f"effects[{word!r}]")
            model.effects.weight[tokenizer.convert_tokens_to_ids(word)] = vector.float()
        model.bias.copy_(_effect_vector(bias, num_labels, "bias").float())
    return model.to(torch.float32).eval(), tokenizer
