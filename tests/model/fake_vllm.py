"""A minimal stand-in for vLLM's OpenAI-compatible completions endpoint, serving a local causal LM.

`POST /v1/completions` with token-id prompts, `echo`, `logprobs` and `max_tokens` answers as vLLM does: per
prompt one choice whose `logprobs.token_logprobs` holds the prompt tokens' log-probabilities (None for the
first) followed by the greedily generated tokens'; `tokens`, `top_logprobs` and `text_offset` alongside.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tests.model.loopback import JSONHandler, serving


def _prompt_log_softmax(model, prompts: list[list[int]]) -> list[torch.Tensor]:
    """Log-softmax of the logits at each position of each prompt; prompts of one length run as one batch."""
    out: list[torch.Tensor | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(i)
    with torch.inference_mode():
        for indices in by_length.values():
            ids = torch.tensor([prompts[i] for i in indices])
            values = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float().log_softmax(-1)
            for i, row in zip(indices, values, strict=True):
                out[i] = row
    return out


def _completion(model, tokenizer, prompt: list[int], body: dict, log_softmax: torch.Tensor) -> dict:
    echo, n_logprobs, max_tokens = (
        bool(body.get("echo")),
        body.get("logprobs"),
        int(body.get("max_tokens", 16)),
    )
    ids = list(prompt)
    with torch.inference_mode():
        for step in range(max_tokens):
            ids.append(int(log_softmax[-1].argmax()))  # temperature 0: greedy
            if step < max_tokens - 1:
                log_softmax = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    start = 0 if echo else len(prompt)
    shown = ids[start:]
    token_logprobs = [None if i == 0 else float(log_softmax[i - 1, ids[i]]) for i in range(start, len(ids))]
    top = [
        None
        if i == 0
        else {
            tokenizer.decode([int(j)]): float(log_softmax[i - 1, j])
            for j in log_softmax[i - 1].topk(n_logprobs or 1).indices
        }
        for i in range(start, len(ids))
    ]
    tokens = [tokenizer.decode([i]) for i in shown]
    offsets = [sum(len(t) for t in tokens[:k]) for k in range(len(tokens))]
    logprobs = None
    if n_logprobs is not None:
        logprobs = {
            "tokens": tokens,
            "token_logprobs": token_logprobs,
            "top_logprobs": top,
            "text_offset": offsets,
        }
    return {"text": "".join(tokens), "logprobs": logprobs, "finish_reason": "length"}


class Served:
    """The running server: its base URL and how many requests it answered."""

    def __init__(self, url: str):
        self.url = url
        self.requests = 0
        self.prompts = 0


@contextmanager
def serve(
    model, tokenizer, name: str = "served", status: int = 200, latency: float = 0.0
) -> Iterator[Served]:
    """Serves `model` on 127.0.0.1 (a free port) in a thread; yields a `Served` whose `url` is the base URL
    (`http://127.0.0.1:PORT/v1`). `status` other than 200 answers every request with that HTTP error; `latency` seconds are waited before each answer
    (a network round trip, to measure concurrent requests)."""
    lock = threading.Lock()

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            with lock:
                served.requests += 1
            if status != 200:
                return self._reply(status, {"object": "error", "message": "internal error", "code": status})
            if self.path != "/v1/completions":
                return self._reply(404, {"object": "error", "message": f"no route {self.path}"})
            if body.get("model") != name:
                message = f"The model `{body.get('model')}` does not exist."
                return self._reply(404, {"object": "error", "message": message, "code": 404})
            prompts = body["prompt"]
            if prompts and isinstance(prompts[0], int):
                prompts = [prompts]
            with lock:
                served.prompts += len(prompts)
            values = _prompt_log_softmax(model, prompts)
            choices = [
                {"index": i, **_completion(model, tokenizer, prompt, body, value)}
                for i, (prompt, value) in enumerate(zip(prompts, values, strict=True))
            ]
            self._reply(
                200, {"id": "cmpl-fake", "object": "text_completion", "model": name, "choices": choices}
            )

    served = Served("")
    with serving(Handler) as url:
        served.url = url
        yield served
