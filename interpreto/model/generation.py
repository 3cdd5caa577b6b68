"""Causal language models: explain each token of a continuation given its prompt.

The prompt is tokenized with the tokenizer's special tokens (BOS where the model uses one) and the continuation
once, without special tokens; their ids are concatenated and never re-derived from decoded text. The model runs
teacher-forced on `prompt + continuation[:-1]` and its LM head only at the positions that predict the
continuation tokens.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from transformers import DynamicCache

from interpreto.model.granularity import Elements, Granularity, group_tokens
from interpreto.model.sample import Inputs, Sample, Targets, as_list, check_text, per_input
from interpreto.model.task import Task
from interpreto.model.tokens import Encoding, as_id_tensor, check_length, encode

Prompt = str | list[dict]


class GenerationTask(Task):
    """Explains the log-probability (by default) of each continuation token of a causal LM."""

    name = "generation"
    default_score = "log_probabilities"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def target_logits(self, sample: Sample, model_kwargs: dict) -> torch.Tensor:
        """Logits at the positions predicting each continuation token: `(rows, n_targets, vocab)`."""
        n_targets = sample.n_targets
        if self._keeps_logits:
            return self.model(**model_kwargs, use_cache=False, logits_to_keep=n_targets).logits
        return self.model(**model_kwargs, use_cache=False).logits[:, -n_targets:]

    @property
    def reuses_prefix(self) -> bool:
        """A local model taking `logits_to_keep` runs rows from their first change, over the input's KV cache."""
        return self._keeps_logits

    def input_state(self, sample: Sample) -> tuple[DynamicCache | None, torch.Tensor]:
        """Scores of the unperturbed input and its KV cache, reused by perturbed rows that share a prefix."""
        if not self._keeps_logits:
            return super().input_state(sample)
        ids = sample.input_ids[None].to(self.device)
        output = self.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            use_cache=True,
            logits_to_keep=sample.n_targets,
        )
        cache = output.past_key_values if isinstance(output.past_key_values, DynamicCache) else None
        return cache, self.score_values(output.logits, sample)[0]

    def scores_after(
        self, sample: Sample, input_ids: torch.Tensor, start: int, state, input_scores: torch.Tensor
    ) -> torch.Tensor:
        """Runs only positions from `start` on, over the input's cached keys and values before it; scored
        positions before `start` keep the input's scores (a causal LM cannot see the change)."""
        if state is None or start < 1:
            return self.scores(sample, input_ids=input_ids)
        rows, length = input_ids.shape
        if start >= length:
            return input_scores[None].expand(rows, -1)
        n_scored = min(sample.n_targets, length - start)
        cache = copy.deepcopy(state)
        cache.crop(start - cache.get_seq_length())  # a negative count removes that many tokens
        cache.batch_repeat_interleave(rows)
        logits = self.model(
            input_ids=input_ids[:, start:].to(self.device),
            attention_mask=torch.ones(rows, length, dtype=torch.long, device=self.device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=n_scored,
        ).logits
        scores = input_scores.to(logits.device)[None].repeat(rows, 1)
        scores[:, sample.n_targets - n_scored :] = self.score_values(logits, sample, slice(-n_scored, None))
        return scores

    def prepare(
        self, inputs: Inputs, targets: Targets, granularity: Granularity, **generate_kwargs: Any
    ) -> list[Sample]:
        """Tokenizes prompts and continuations (generated when the target is None).

        Args:
            inputs: a prompt (a string, or a chat as a list of `{"role", "content"}` messages) or a list of them.
            targets: for one prompt: its continuation (a string or token ids) or None to generate it; for a
                list of prompts: None, or one entry per prompt.
            granularity: how prompt tokens are grouped; continuation tokens stay one element each.
            **generate_kwargs: `contrast`: a contrastive continuation (a string or token ids, or one per prompt)
                with as many tokens as the target: each step then explains score(target) - score(contrast), as
                inseq's contrastive attribution. Everything else goes to `model.generate` (e.g.
                `max_new_tokens`); greedy by default.
        """
        contrast = generate_kwargs.pop("contrast", None)
        single = isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], dict)
        )
        prompts = [inputs] if single else as_list(inputs)
        entry = "a continuation as a string or token ids, or None"
        per_prompt = per_input(targets, len(prompts), single or targets is None, "targets", entry)
        contrasts = per_input(contrast, len(prompts), single or contrast is None, "contrast", entry)
        samples = []
        for prompt, target, contrast_target in zip(prompts, per_prompt, contrasts, strict=True):
            sample = self._sample(prompt, target, granularity, generate_kwargs)
            if contrast_target is not None:
                self._add_contrast(sample, contrast_target)
            samples.append(sample)
        return samples

    def _add_contrast(self, sample: Sample, contrast) -> None:
        """Sets the contrast token ids of a sample; they must align one to one with the target tokens."""
        ids = self._continuation_ids(contrast, [], {}, argument="contrast")
        if len(ids) != sample.n_targets:
            raise ValueError(
                f"contrast has {len(ids)} tokens but the continuation has {sample.n_targets}: give a contrast "
                f"with one token per continuation token (or token ids)."
            )
        sample.contrast_ids = as_id_tensor(ids)
        sample.contrast_names = [self.tokenizer.decode([i]) for i in ids]

    def _render(self, prompt: Prompt) -> tuple[str, Encoding]:
        """Tokenizes a prompt; a chat is rendered with the tokenizer's template, its markup treated as special."""
        if isinstance(prompt, str):
            return prompt, encode(self.tokenizer, check_text(prompt), add_special_tokens=True)
        if not isinstance(prompt, list) or not all(isinstance(m, dict) and "content" in m for m in prompt):
            raise TypeError(
                "inputs: a prompt is a string or a list of {'role': ..., 'content': ...} messages."
            )
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError(
                "inputs: a chat prompt needs a tokenizer with a chat template; pass a string instead."
            )
        text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        spans, cursor = [], 0
        for message in prompt:
            content = check_text(message["content"], "inputs (message content)")
            start = text.find(content, cursor)
            if start >= 0:
                spans.append((start, start + len(content)))
                cursor = start + len(content)
        return text, encode(self.tokenizer, text, add_special_tokens=False, content_spans=spans)

    def _continuation_ids(
        self, target, prompt_ids: list[int], generate_kwargs: dict, argument: str = "targets"
    ) -> list[int]:
        if target is None:
            return self._generate(prompt_ids, generate_kwargs)
        if isinstance(target, str):
            if not target:
                raise ValueError(
                    f"{argument}: the continuation is empty: pass at least one character, or None."
                )
            ids = self.tokenizer(target, add_special_tokens=False)["input_ids"]
        elif isinstance(target, torch.Tensor):
            ids = target.flatten().tolist()
        elif isinstance(target, (list, tuple)) and all(isinstance(i, int) for i in target):
            ids = list(target)
        else:
            raise TypeError(
                f"{argument}: a continuation is a string, a list of token ids or None, got {type(target).__name__}."
            )
        if not ids:
            raise ValueError(
                f"{argument}: the continuation has no token: pass a non-empty continuation, or None."
            )
        n_embeddings = self.model.get_input_embeddings().num_embeddings
        if any(not 0 <= i < n_embeddings for i in ids):
            raise IndexError(f"{argument}: continuation token ids must lie in 0..{n_embeddings - 1}.")
        return ids

    def _generate(self, prompt_ids: list[int], generate_kwargs: dict) -> list[int]:
        """Greedy continuation of the prompt; end-of-sequence tokens at its end are dropped."""
        kwargs = {"max_new_tokens": 20, "do_sample": False, **generate_kwargs}
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        ids = torch.tensor([prompt_ids], device=self.device)
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), pad_token_id=pad, **kwargs
            )
        new_ids = generated[0, len(prompt_ids) :].tolist()
        stop_ids = {eos, pad} | set(_as_list(self.model.generation_config.eos_token_id))
        while new_ids and new_ids[-1] in stop_ids:
            new_ids.pop()
        if not new_ids:
            raise ValueError("targets=None: the model generated no token to explain; pass a continuation.")
        return new_ids

    def _sample(self, prompt: Prompt, target, granularity: Granularity, generate_kwargs: dict) -> Sample:
        text, encoding = self._render(prompt)
        continuation = self._continuation_ids(target, encoding.input_ids, generate_kwargs)
        encoding = self._fit(encoding, len(continuation))
        n_prompt = len(encoding.input_ids)
        prompt_elements = group_tokens(text, encoding.tokens, encoding.offsets, encoding.is_text, granularity)
        if not prompt_elements.labels:
            raise ValueError(f"inputs: the prompt {text!r} has no token to explain.")
        names = [self.tokenizer.decode([i]) for i in continuation]
        n_targets = len(continuation)
        elements = Elements(
            labels=prompt_elements.labels + names,
            spans=prompt_elements.spans + [None] * n_targets,
            # the last continuation token is never fed: nothing comes after it to score
            token_groups=prompt_elements.token_groups + [[n_prompt + k] for k in range(n_targets - 1)] + [[]],
        )
        n_prompt_elements = len(prompt_elements.labels)
        visible = torch.ones(n_targets, len(elements.labels), dtype=torch.bool)
        step = torch.arange(n_targets)
        visible[:, n_prompt_elements:] = step[None, :] < step[:, None]
        return Sample(
            text=text,
            input_ids=as_id_tensor(encoding.input_ids + continuation[:-1]),
            maskable=torch.tensor(encoding.is_text + [True] * (n_targets - 1)),
            elements=elements,
            target_ids=as_id_tensor(continuation),
            target_names=names,
            visible=visible,
            n_prompt_elements=n_prompt_elements,
            source=prompt,
        )

    def _fit(self, encoding: Encoding, n_continuation: int) -> Encoding:
        """Checks the length; with truncation, drops the oldest prompt tokens (a leading BOS is kept)."""
        total = len(encoding.input_ids) + n_continuation - 1
        if self.max_length is None or total <= self.max_length:
            return encoding
        if not self.truncation:
            check_length(total, self.max_length, "inputs (prompt + continuation)")
        start = 0 if encoding.is_text[0] else 1
        stop = start + total - self.max_length
        if stop >= len(encoding.input_ids):
            raise ValueError("targets: the continuation alone is longer than the model allows.")

        def cut(values):
            return values[:start] + values[stop:]

        return Encoding(
            input_ids=cut(encoding.input_ids),
            offsets=cut(encoding.offsets),
            is_text=cut(encoding.is_text),
            tokens=cut(encoding.tokens),
        )


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
