"""Remote models: perturbation attributions scored through an OpenAI-compatible completions endpoint.

A `RemoteScorer` stands in for a causal LM served elsewhere (e.g. by vLLM across GPUs and nodes). Perturbation
methods (Occlusion, Lime, KernelShap, Sobol) only need the log-probability of each continuation token for rows
of token ids; the endpoint returns them for the prompt it is given:

    POST {base_url}/completions
    {"model": NAME, "prompt": [[ids], [ids], ...], "max_tokens": 1, "echo": true, "logprobs": 1,
     "temperature": 0}

answers `{"choices": [{"index": i, "logprobs": {"token_logprobs": [null, lp1, lp2, ...], ...}}, ...]}`, whose
first `len(prompt)` entries are the log-probabilities of the prompt's tokens (the first is null). Logits,
input embeddings and gradients are not available remotely.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from interpreto.model.generation import GenerationTask
from interpreto.model.http import post_json
from interpreto.model.sample import Sample, Tokenizer
from interpreto.model.scores import resolve_score

REMOTE_SCORES = ("log_probabilities", "probabilities")


@dataclass
class _Vocabulary:
    """What id checks read of a model's input embeddings: its size (a remote model has no weights here)."""

    num_embeddings: int


class RemoteScorer:
    """A causal LM behind an OpenAI-compatible completions endpoint (`vllm serve MODEL`), passed to a
    perturbation explainer in place of a local model.

    Args:
        base_url: the API root, e.g. `"http://127.0.0.1:8000/v1"` (`/completions` is appended).
        model_name: the served model's name (the `model` field of each request).
        tokenizer: the served model's tokenizer, to check the explainer's matches it (optional).
        batch_size: rows (prompts) per request.
        max_concurrency: requests in flight at once when a call has more rows than `batch_size`.
        timeout: seconds to wait for one request.
        retries: new attempts after a connection error (not after an HTTP error).
        api_key: sent as `Authorization: Bearer ...` when given (`vllm serve --api-key`).
        max_length: the longest sequence the served model takes (None: the tokenizer's limit, if any).
    """

    def __init__(
        self,
        base_url: str,
        model_name: str,
        tokenizer: Tokenizer | None = None,
        batch_size: int = 32,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        retries: int = 2,
        api_key: str | None = None,
        max_length: int | None = None,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {base_url!r}."
            )
        for name, value in (("batch_size", batch_size), ("max_concurrency", max_concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/completions"
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = retries
        self.api_key = api_key
        self.max_length = max_length

    def __repr__(self) -> str:
        return f"RemoteScorer({self.base_url!r}, {self.model_name!r})"

    def get_input_embeddings(self) -> _Vocabulary:
        """The vocabulary size only (for token id checks): a remote model has no embedding weights here."""
        size = len(self.tokenizer) if self.tokenizer is not None else 2**31 - 1
        return _Vocabulary(num_embeddings=size)

    def prompt_logprobs(self, prompts: list[list[int]]) -> list[list[float | None]]:
        """Log-probability of each token of each prompt given the tokens before it (None for the first).

        Prompts go `batch_size` per request, up to `max_concurrency` requests at once; the order is kept.
        """
        chunks = [prompts[i : i + self.batch_size] for i in range(0, len(prompts), self.batch_size)]
        if len(chunks) <= 1 or self.max_concurrency == 1:
            results = [self._request(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(min(self.max_concurrency, len(chunks))) as pool:
                results = list(pool.map(self._request, chunks))
        return [row for result in results for row in result]

    def _request(self, prompts: list[list[int]]) -> list[list[float | None]]:
        body = {
            "model": self.model_name,
            "prompt": [[int(i) for i in prompt] for prompt in prompts],
            "max_tokens": 1,
            "echo": True,
            "logprobs": 1,
            "temperature": 0,
        }
        response = self._post(body)
        try:
            choices = sorted(response["choices"], key=lambda choice: choice["index"])
            rows = [choice["logprobs"]["token_logprobs"] for choice in choices]
        except (KeyError, TypeError) as error:
            raise RuntimeError(
                f"{self.url} answered without choices[i].logprobs.token_logprobs ({error!r}): the server must "
                f"support echo=True with logprobs (an OpenAI-compatible completions endpoint, e.g. vLLM)."
            ) from None
        if len(rows) != len(prompts) or any(len(r) < len(p) for r, p in zip(rows, prompts, strict=False)):
            raise RuntimeError(
                f"{self.url} returned {len(rows)} choices for {len(prompts)} prompts, or fewer log-probabilities "
                f"than prompt tokens: the server must echo the prompt's log-probabilities."
            )
        return [row[: len(prompt)] for row, prompt in zip(rows, prompts, strict=True)]

    def _post(self, body: dict) -> dict:
        return post_json(
            self.url, body, self.api_key, self.timeout, self.retries, what=f"model {self.model_name!r}"
        )


class RemoteGenerationTask(GenerationTask):
    """Generation through a `RemoteScorer`: the log-probability (or probability) of each continuation token."""

    def __init__(
        self, model: RemoteScorer, tokenizer: Tokenizer, score: Any = None, truncation: bool = False
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError(f"tokenizer must be a fast tokenizer, got {type(tokenizer).__name__}.")
        if model.tokenizer is not None and model.tokenizer.get_vocab() != tokenizer.get_vocab():
            raise ValueError("tokenizer differs from the RemoteScorer's: pass the served model's tokenizer.")
        score = self.default_score if score is None else score
        if score not in REMOTE_SCORES:
            raise ValueError(
                f"score={score!r} is not available from a RemoteScorer, which only returns log-probabilities: "
                f"use one of {list(REMOTE_SCORES)} (logits and custom score functions need a local model)."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.score_name = score
        self.score_function = resolve_score(score)
        self.layer = None
        self.truncation = truncation
        limits = [model.max_length, getattr(tokenizer, "model_max_length", None)]
        limits = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000]
        self.max_length = min(limits) if limits else None
        self._keeps_logits = False

    @property
    def device(self) -> torch.device:
        """Rows are built on the CPU; the server runs them wherever it runs."""
        return torch.device("cpu")

    def check_method(self, explainer: Any) -> None:
        """Raises unless `explainer` only reads scores (a perturbation method)."""
        if getattr(explainer, "split_point", None) is not None:
            raise TypeError(
                f"{type(explainer).__name__}(split_point=...) reads hidden states: layer attribution needs a "
                f"local model, a RemoteScorer only returns log-probabilities."
            )
        if getattr(explainer, "needs_gradients", True):
            raise TypeError(
                f"{type(explainer).__name__} needs the model's gradients: gradient methods need a local model. "
                f"With a RemoteScorer use a perturbation method (Occlusion, Lime, KernelShap, Sobol)."
            )

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise TypeError("a RemoteScorer has no input embeddings: gradient methods need a local model.")

    def _generate(self, prompt_ids: list[int], generate_kwargs: dict) -> list[int]:
        raise ValueError(
            "targets=None: a RemoteScorer does not generate; pass the continuation to explain (a string or "
            "token ids), e.g. the text the server generated for this prompt."
        )

    def scores(
        self,
        sample: Sample,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores `(rows, n_targets)` of rows of token ids, from the endpoint's prompt log-probabilities."""
        if input_ids is None or inputs_embeds is not None or activations is not None:
            raise TypeError(
                "a RemoteScorer scores token ids only (no input embeddings nor hidden states): gradient methods "
                "and split points need a local model."
            )
        rows = input_ids.tolist()
        n_targets, targets = sample.n_targets, sample.target_ids.tolist()
        n_prompt = len(rows[0]) - n_targets + 1
        contrasts = None if sample.contrast_ids is None else sample.contrast_ids.tolist()
        # each row followed by the last continuation token: its last n_targets log-probabilities are the
        # targets', except where a row replaced a continuation token (it is then the context of later steps,
        # and the scored token of its step is asked for alone), and for contrasts (asked for alone too)
        extra, where = [], []
        for r, row in enumerate(rows):
            for k in range(n_targets):
                if k < n_targets - 1 and row[n_prompt + k] != targets[k]:
                    extra.append(row[: n_prompt + k] + [targets[k]])
                    where.append((r, k, 0))
                if contrasts is not None:
                    extra.append(row[: n_prompt + k] + [contrasts[k]])
                    where.append((r, k, 1))
        logprobs = self.model.prompt_logprobs([row + targets[-1:] for row in rows] + extra)
        values = torch.tensor([lp[-n_targets:] for lp in logprobs[: len(rows)]], dtype=torch.float64)
        contrast = torch.zeros_like(values)
        for (r, k, is_contrast), lp in zip(where, logprobs[len(rows) :], strict=True):
            (contrast if is_contrast else values)[r, k] = lp[-1]
        if contrasts is not None:
            return self._score(values) - self._score(contrast)
        return self._score(values)

    def _score(self, logprobs: torch.Tensor) -> torch.Tensor:
        if torch.isnan(logprobs).any():
            raise RuntimeError(f"{self.model.url} returned a NaN log-probability.")
        return (logprobs.exp() if self.score_name == "probabilities" else logprobs).float()

    def scores_after(
        self, sample: Sample, input_ids: torch.Tensor, start: int, state: Any, input_scores: torch.Tensor
    ) -> torch.Tensor:
        """Rows that change nothing fed to the model keep the input's scores; the others go to the server."""
        if start >= input_ids.shape[1]:
            return input_scores[None].expand(input_ids.shape[0], -1)
        return self.scores(sample, input_ids=input_ids)
