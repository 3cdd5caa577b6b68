"""Chat LLMs that write and judge explanations: a local transformers chat model or an OpenAI-compatible endpoint.

Concept labels (`interpreto.concepts.interpret`), their scores and ConSim (`interpreto.evaluation`) ask an LLM
questions as chat conversations (lists of `{"role": ..., "content": ...}` messages). Every backend answers
`complete(conversations)` with one text per conversation, deterministically (greedy decoding, or sampling
from a fixed seed), and, where it can, `option_logprobs(conversations, options)` with the log-probability that
the answer starts with each option (detection AUC, ConSim's scores). Three backends:

- `LocalChatLLM(model, tokenizer)`: any `...ForCausalLM` with a chat template (the zoo's SmolLM2 in tests),
  batched, left-padded here (the tokenizer's own padding side is never changed);
- `OpenAIChatLLM(base_url, model, api_key)`: `POST {base_url}/chat/completions` (vLLM, llama.cpp's server,
  OpenAI, ...), standard-library HTTP, requests in parallel;
- `CallableLLM(fn)`: a Python function `fn(conversation) -> str`, for stand-ins and other backends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.model.http import post_json
from interpreto.model.running import explaining

Message = dict[str, str]
Conversation = list[Message]
ROLES = ("system", "user", "assistant")


class ChatLLM:
    """What every chat backend answers. Subclasses define `complete` and, if they can, `option_logprobs`."""

    supports_logprobs = False

    def complete(self, conversations: Sequence[Conversation], max_new_tokens: int = 64) -> list[str]:
        """One answer (the assistant's text, stripped) per conversation."""
        raise NotImplementedError

    def option_logprobs(self, conversations: Sequence[Conversation], options: Sequence[str]) -> torch.Tensor:
        """`(n_conversations, n_options)` log-probabilities that the answer starts with each option (its first
        token); `-inf` where the backend does not say."""
        raise NotImplementedError(f"{type(self).__name__} gives no log-probabilities.")


class CallableLLM(ChatLLM):
    """A Python function as the LLM: `fn(conversation) -> answer`.

    Args:
        fn: called once per conversation with its list of messages; returns the answer text.

    Examples:
        >>> llm = CallableLLM(lambda conversation: conversation[-1]["content"].upper())
        >>> llm.complete([[{"role": "user", "content": "hi"}]])
        ['HI']
    """

    def __init__(self, fn: Callable[[Conversation], str]):
        if not callable(fn):
            raise TypeError(f"fn must be a function conversation -> str, got {type(fn).__name__}.")
        self.fn = fn

    def complete(self, conversations: Sequence[Conversation], max_new_tokens: int = 64) -> list[str]:
        answers = []
        for conversation in check_conversations(conversations):
            answer = self.fn(conversation)
            if not isinstance(answer, str):
                raise TypeError(f"CallableLLM: fn returned a {type(answer).__name__}, not a str.")
            answers.append(answer.strip())
        return answers

    def __repr__(self) -> str:
        return f"CallableLLM({getattr(self.fn, '__name__', 'fn')})"


class LocalChatLLM(ChatLLM):
    """A local transformers chat model.

    Args:
        model: a `...ForCausalLM` (never modified: mode, device and weights are as before after each call).
        tokenizer: its tokenizer, with a chat template (never modified).
        batch_size: conversations per `generate` call.
        temperature: 0 decodes greedily; above 0 samples, seeded with `seed` for each call.
        seed: the sampling seed.
        system_prompt: prepended as a system message to conversations that have none.
        progress: show a progress bar over batches.

    Examples:
        >>> from interpreto.zoo import tiny_llama
        >>> model, tokenizer = tiny_llama()
        >>> llm = LocalChatLLM(model, tokenizer)
        >>> answers = llm.complete([[{"role": "user", "content": "Hi"}]], max_new_tokens=3)
        >>> len(answers), isinstance(answers[0], str)
        (1, True)
    """

    supports_logprobs = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        temperature: float = 0.0,
        seed: int = 0,
        system_prompt: str | None = None,
        progress: bool = False,
    ):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "tokenizer has no chat template: LocalChatLLM needs a chat model (e.g. interpreto.zoo.smollm2())."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        check_temperature(temperature)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.temperature = temperature
        self.seed = seed
        self.system_prompt = system_prompt
        self.progress = progress

    def complete(self, conversations: Sequence[Conversation], max_new_tokens: int = 64) -> list[str]:
        prompts = [self._prompt_ids(c) for c in check_conversations(conversations)]
        answers: list[str] = []
        with explaining(self.model, None), torch.inference_mode():
            for start in self._starts(len(prompts)):
                ids, mask = self._left_padded(prompts[start : start + self.batch_size])
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    output = self.model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        max_new_tokens=max_new_tokens,
                        do_sample=self.temperature > 0,
                        temperature=self.temperature if self.temperature > 0 else None,
                        top_p=None,
                        top_k=None,
                        pad_token_id=self._pad_id(),
                    )
                new = output[:, ids.shape[1] :]
                answers += [a.strip() for a in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return answers

    def option_logprobs(self, conversations: Sequence[Conversation], options: Sequence[str]) -> torch.Tensor:
        """Log-probability of each option's first token as the answer's first token (the LM head runs at the
        last position only)."""
        option_ids = [self._first_token(option) for option in check_options(options)]
        prompts = [self._prompt_ids(c) for c in check_conversations(conversations)]
        rows = []
        with explaining(self.model, None), torch.inference_mode():
            for start in self._starts(len(prompts)):
                ids, mask = self._left_padded(prompts[start : start + self.batch_size])
                logits = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1]
                rows.append(logits.float().log_softmax(-1)[:, option_ids].cpu())
        return torch.cat(rows) if rows else torch.zeros(0, len(option_ids))

    def _prompt_ids(self, conversation: Conversation) -> list[int]:
        if self.system_prompt is not None and conversation[0]["role"] != "system":
            conversation = [{"role": "system", "content": self.system_prompt}, *conversation]
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _first_token(self, option: str) -> int:
        ids = self.tokenizer(option, add_special_tokens=False)["input_ids"]
        return ids[0]

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        return 0 if pad is None else int(pad)

    def _left_padded(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ids and attention mask (the tokenizer's padding side is left as it is)."""
        width = max(len(p) for p in prompts)
        device = self.model.get_input_embeddings().weight.device
        ids = torch.full((len(prompts), width), self._pad_id(), dtype=torch.long)
        mask = torch.zeros(len(prompts), width, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        return ids.to(device), mask.to(device)

    def _starts(self, n: int) -> Any:
        starts = range(0, n, self.batch_size)
        return tqdm(starts, desc="LLM", disable=not self.progress or len(starts) < 2)

    def __repr__(self) -> str:
        return f"LocalChatLLM({type(self.model).__name__}, temperature={self.temperature}, seed={self.seed})"


class OpenAIChatLLM(ChatLLM):
    """A chat model behind an OpenAI-compatible endpoint (`POST {base_url}/chat/completions`).

    Args:
        base_url: the API root, e.g. `"http://127.0.0.1:8000/v1"` or `"https://api.openai.com/v1"`.
        model: the served model's name.
        api_key: sent as `Authorization: Bearer ...` when given.
        temperature: sampling temperature (0: greedy, the default).
        seed: sent with each request (servers that support it sample reproducibly).
        timeout: seconds to wait for one answer.
        retries: new attempts after a connection error.
        max_concurrency: requests in flight at once.
        top_logprobs: alternatives asked for by `option_logprobs` (at most 20 for OpenAI).
    """

    supports_logprobs = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        timeout: float = 60.0,
        retries: int = 2,
        max_concurrency: int = 4,
        top_logprobs: int = 20,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {base_url!r}."
            )
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}.")
        check_temperature(temperature)
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.api_key = api_key
        self.temperature = temperature
        self.seed = seed
        self.timeout = timeout
        self.retries = retries
        self.max_concurrency = max_concurrency
        self.top_logprobs = top_logprobs

    def complete(self, conversations: Sequence[Conversation], max_new_tokens: int = 64) -> list[str]:
        bodies = [self._body(c, max_tokens=max_new_tokens) for c in check_conversations(conversations)]
        return [self._choice(answer)["message"]["content"].strip() for answer in self._post_all(bodies)]

    def option_logprobs(self, conversations: Sequence[Conversation], options: Sequence[str]) -> torch.Tensor:
        """From the first answer token's `top_logprobs`: an option gets the best log-probability among the
        returned tokens its text starts with (case and surrounding spaces ignored), else `-inf`."""
        options = check_options(options)
        bodies = [
            self._body(c, max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs)
            for c in check_conversations(conversations)
        ]
        rows = []
        for answer in self._post_all(bodies):
            try:
                top = self._choice(answer)["logprobs"]["content"][0]["top_logprobs"]
            except (KeyError, IndexError, TypeError):
                raise RuntimeError(
                    f"{self.url} answered without choices[0].logprobs.content[0].top_logprobs: the server must "
                    f"support logprobs=true with top_logprobs for option_logprobs."
                ) from None
            rows.append([_option_logprob(option, top) for option in options])
        return torch.tensor(rows, dtype=torch.float32).reshape(len(bodies), len(options))

    def _body(self, conversation: Conversation, **fields: Any) -> dict:
        return {
            "model": self.model,
            "messages": conversation,
            "temperature": self.temperature,
            "seed": self.seed,
            **fields,
        }

    def _post_all(self, bodies: list[dict]) -> list[dict]:
        def post(body: dict) -> dict:
            return post_json(
                self.url, body, self.api_key, self.timeout, self.retries, f"model {self.model!r}"
            )

        if len(bodies) <= 1 or self.max_concurrency == 1:
            return [post(body) for body in bodies]
        with ThreadPoolExecutor(min(self.max_concurrency, len(bodies))) as pool:
            return list(pool.map(post, bodies))

    def _choice(self, answer: dict) -> dict:
        try:
            return answer["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.url} answered without choices: {str(answer)[:300]}") from None

    def __repr__(self) -> str:
        return f"OpenAIChatLLM({self.base_url!r}, {self.model!r})"


def as_chat_llm(llm: Any) -> ChatLLM:
    """`llm` as a `ChatLLM`: a `ChatLLM` as is, a `(model, tokenizer)` pair as a `LocalChatLLM`, a function
    `conversation -> str` as a `CallableLLM`.

    Raises:
        TypeError: naming `llm` and what it may be.
    """
    if isinstance(llm, ChatLLM):
        return llm
    if isinstance(llm, tuple) and len(llm) == 2:
        return LocalChatLLM(*llm)
    if callable(llm) and not isinstance(llm, torch.nn.Module):
        return CallableLLM(llm)
    raise TypeError(
        f"llm must be a ChatLLM (LocalChatLLM(model, tokenizer), OpenAIChatLLM(base_url, model)), a (model, "
        f"tokenizer) pair or a function conversation -> str, got {type(llm).__name__}."
    )


def check_conversations(conversations: Sequence[Conversation]) -> list[Conversation]:
    """`conversations` as a list, each a non-empty list of `{"role", "content"}` messages.

    Raises:
        ValueError: naming `conversations` and the message at fault.
    """
    if isinstance(conversations, (str, dict)) or not isinstance(conversations, Sequence):
        raise ValueError("conversations must be a list of conversations, each a list of messages.")
    checked = []
    for i, conversation in enumerate(conversations):
        if not isinstance(conversation, list) or not conversation:
            raise ValueError(f"conversations[{i}] must be a non-empty list of messages.")
        for message in conversation:
            if (
                not isinstance(message, dict)
                or message.get("role") not in ROLES
                or not isinstance(message.get("content"), str)
            ):
                raise ValueError(
                    f"conversations[{i}] holds {message!r}: each message is {{'role': one of {ROLES}, "
                    f"'content': str}}."
                )
        checked.append(conversation)
    return checked


def check_options(options: Sequence[str]) -> list[str]:
    if isinstance(options, str) or not options or not all(isinstance(o, str) and o.strip() for o in options):
        raise ValueError(f"options must be a non-empty list of non-empty strings, got {options!r}.")
    return list(options)


def check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0: greedy), got {temperature!r}.")


def _option_logprob(option: str, top: list[dict]) -> float:
    wanted = option.strip().lower()
    best = -math.inf
    for entry in top:
        token = str(entry.get("token", "")).strip().lower()
        if token and wanted.startswith(token):
            best = max(best, float(entry["logprob"]))
    return best
