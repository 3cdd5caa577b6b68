"""A loopback stand-in for an OpenAI-compatible chat endpoint (`POST /v1/chat/completions`).

`respond(conversation) -> str` writes each answer; `option_logprobs(conversation) -> {token: logprob}`, when
given, fills `choices[0].logprobs.content[0].top_logprobs` for requests with `logprobs: true`. Every request
body is kept in `Served.requests` for assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.model.loopback import JSONHandler, serving


@dataclass
class ServedChat:
    """The running server: its base URL and the request bodies it answered."""

    url: str
    requests: list[dict] = field(default_factory=list)


@contextmanager
def serve_chat(
    respond: Callable[[list[dict]], str],
    option_logprobs: Callable[[list[dict]], dict[str, float]] | None = None,
    name: str = "served",
    status: int = 200,
) -> Iterator[ServedChat]:
    """Serves chat completions on 127.0.0.1 (a free port) in a thread; yields a `ServedChat` whose `url` is the
    base URL (`http://127.0.0.1:PORT/v1`). `status` other than 200 answers every request with that error."""
    lock = threading.Lock()

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                served.requests.append(body)
            if status != 200:
                return self._reply(status, {"error": {"message": "internal error", "code": status}})
            if self.path != "/v1/chat/completions":
                return self._reply(404, {"error": {"message": f"no route {self.path}"}})
            if body.get("model") != name:
                return self._reply(
                    404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
                )
            messages = body["messages"]
            choice = {"index": 0, "message": {"role": "assistant", "content": respond(messages)}}
            if body.get("logprobs") and option_logprobs is not None:
                top = [{"token": t, "logprob": lp} for t, lp in option_logprobs(messages).items()]
                choice["logprobs"] = {"content": [{"token": top[0]["token"], "top_logprobs": top}]}
            self._reply(
                200, {"id": "chat-fake", "object": "chat.completion", "model": name, "choices": [choice]}
            )

    served = ServedChat("")
    with serving(Handler) as url:
        served.url = url
        yield served
