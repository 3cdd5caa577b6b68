"""`RemoteScorer`: perturbation attributions scored through a vLLM-style completions endpoint equal local ones."""

from __future__ import annotations

import inspect
import socket
import time

import pytest

from interpreto import KernelShap, Lime, Occlusion, RemoteScorer, Saliency, Sobol
from tests.model.fake_vllm import serve
from tests.tolerance import assert_close_to_scale, magnitude

METHODS = {
    "occlusion": (Occlusion, {}),
    "kernel_shap": (KernelShap, {"n_perturbations": 64, "seed": 3}),
    "lime": (Lime, {"n_perturbations": 64, "seed": 3}),
    "sobol": (Sobol, {"n_perturbations": 16, "seed": 3}),
}


@pytest.fixture(scope="module")
def copy_lm():
    from interpreto.zoo import copy_task_lm, copy_task_prompts

    model, tokenizer = copy_task_lm(seed=0)
    return model, tokenizer, copy_task_prompts(3, seed=1)


@pytest.fixture(scope="module")
def server(copy_lm):
    model, tokenizer, _ = copy_lm
    with serve(model, tokenizer, name="copy-lm") as served:
        yield served


def assert_same(local, remote):
    assert len(local) == len(remote)
    for a, b in zip(local, remote, strict=True):
        assert a.elements == b.elements and a.targets == b.targets
        # the attributions are built from the log-probabilities: their round-off is a fraction of both
        scale = magnitude(a.attributions, a.scores)
        assert_close_to_scale(b.attributions, a.attributions, scale=scale, equal_nan=True)
        assert_close_to_scale(b.scores, a.scores)


@pytest.mark.filterwarnings("ignore:Sobol. n_perturbations")  # few rows on purpose: a quick test
@pytest.mark.parametrize("method", sorted(METHODS))
def test_remote_equals_local(copy_lm, server, method):
    model, tokenizer, prompts = copy_lm
    cls, kwargs = METHODS[method]
    remote = RemoteScorer(server.url, "copy-lm", tokenizer, batch_size=16)
    prompt, target, _ = prompts[0]  # the target is " X", X the capital to copy
    local = cls(model, tokenizer, progress=False, **kwargs)(prompt, target + " x")
    assert_same(local, cls(remote, tokenizer, progress=False, **kwargs)(prompt, target + " x"))


def test_several_prompts_one_call(copy_lm, server):
    model, tokenizer, prompts = copy_lm
    texts, targets = [p for p, _, _ in prompts], [t for _, t, _ in prompts]
    remote = RemoteScorer(server.url, "copy-lm", tokenizer, batch_size=4, max_concurrency=3)
    for cls, kwargs in (METHODS["occlusion"], (KernelShap, {"n_perturbations": 24, "seed": 1})):
        local = cls(model, tokenizer, progress=False, **kwargs)(texts, targets)
        assert_same(local, cls(remote, tokenizer, progress=False, **kwargs)(texts, targets))


def test_probabilities_and_contrast(copy_lm, server):
    model, tokenizer, prompts = copy_lm
    prompt, target, _ = prompts[1]
    remote = RemoteScorer(server.url, "copy-lm")
    local = Occlusion(model, tokenizer, progress=False, score="probabilities")(prompt, target)
    out = Occlusion(remote, tokenizer, progress=False, score="probabilities")(prompt, target)
    assert_same(local, out)
    assert out[0].score == "probabilities" and 0 < float(out[0].scores[0]) <= 1
    other = " Q" if target != " Q" else " R"
    local = Occlusion(model, tokenizer, progress=False)(prompt, target, contrast=other)
    assert_same(local, Occlusion(remote, tokenizer, progress=False)(prompt, target, contrast=other))


def test_rows_go_batch_size_per_request(copy_lm, server):
    _, tokenizer, prompts = copy_lm
    scorer = RemoteScorer(server.url, "copy-lm", tokenizer, batch_size=5, max_concurrency=2)
    ids = tokenizer(prompts[0][0])["input_ids"]
    before = server.requests
    logprobs = scorer.prompt_logprobs([ids] * 12)
    assert server.requests - before == 3  # 5 + 5 + 2
    assert len(logprobs) == 12 and logprobs[0][0] is None and len(logprobs[0]) == len(ids)
    assert all(row == logprobs[0] for row in logprobs)


def test_unavailable_scores_and_gradient_methods(copy_lm, server):
    _, tokenizer, prompts = copy_lm
    remote = RemoteScorer(server.url, "copy-lm")
    with pytest.raises(TypeError, match=r"Saliency.*gradient methods need a local model"):
        Saliency(remote, tokenizer, progress=False)(prompts[0][0], " x")
    if "split_point" in inspect.signature(Occlusion.__init__).parameters:  # layer attribution
        with pytest.raises(TypeError, match="split_point"):
            Occlusion(remote, tokenizer, progress=False, split_point=0)(prompts[0][0], " x")
    with pytest.raises(ValueError, match="logits"):
        Occlusion(remote, tokenizer, progress=False, score="logits")(prompts[0][0], " x")
    with pytest.raises(ValueError, match="continuation"):
        Occlusion(remote, tokenizer, progress=False)(prompts[0][0])


def test_http_error_names_the_url(copy_lm):
    model, tokenizer, prompts = copy_lm
    with serve(model, tokenizer, name="copy-lm", status=500) as failing:
        remote = RemoteScorer(failing.url, "copy-lm")
        with pytest.raises(RuntimeError, match=rf"{failing.url}/completions answered HTTP 500"):
            Occlusion(remote, tokenizer, progress=False)(prompts[0][0], " x")
        assert failing.requests == 1  # an HTTP error is not retried
    with serve(model, tokenizer, name="copy-lm") as served:
        with pytest.raises(RuntimeError, match=r"HTTP 404.*'other'"):
            Occlusion(RemoteScorer(served.url, "other"), tokenizer, progress=False)(prompts[0][0], " x")


def test_unreachable_url_fails_fast(copy_lm):
    _, tokenizer, prompts = copy_lm
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"cannot reach {url}/completions .* after 2 attempts"):
        Occlusion(RemoteScorer(url, "m", timeout=1.0, retries=1), tokenizer, progress=False)(
            prompts[0][0], " x"
        )
    assert time.perf_counter() - start < 5


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="base_url"):
        RemoteScorer("127.0.0.1:8000", "m")
    with pytest.raises(ValueError, match="batch_size"):
        RemoteScorer("http://127.0.0.1:8000/v1", "m", batch_size=0)
