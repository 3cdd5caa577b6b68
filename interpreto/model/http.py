"""JSON over HTTP with the standard library: one POST, retried after connection errors (not HTTP errors).

Shared by the clients of remote endpoints (`RemoteScorer`'s completions, `OpenAIChatLLM`'s chat completions).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def post_json(
    url: str,
    body: dict,
    api_key: str | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    what: str = "the model",
) -> dict:
    """POSTs `body` as JSON to `url` and returns the decoded JSON answer.

    Args:
        url: the endpoint.
        body: the request (JSON-serializable).
        api_key: sent as `Authorization: Bearer ...` when given.
        timeout: seconds to wait for the answer.
        retries: new attempts after a connection error (0.1 s, 0.2 s, ... apart); an HTTP error is not retried.
        what: how errors name what was asked for (e.g. `"model 'gpt'"`).

    Raises:
        RuntimeError: the server answered an HTTP error (its status and the start of its message included).
        ConnectionError: the server could not be reached after `retries + 1` attempts.
    """
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode(errors="replace")
            raise RuntimeError(
                f"{url} answered HTTP {error.code} {error.reason} for {what}: {detail}"
            ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if attempt == retries:
                reason = getattr(error, "reason", error)
                raise ConnectionError(
                    f"cannot reach {url} ({reason}) after {attempt + 1} attempts: is the server running "
                    f"(e.g. `vllm serve MODEL`) and is base_url right?"
                ) from None
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")
