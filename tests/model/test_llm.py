"""Chat LLM backends: local model (greedy = a hand-run generate), loopback endpoint, callables, bad input."""

import math

import pytest
import torch

from interpreto.model.llm import CallableLLM, LocalChatLLM, OpenAIChatLLM, as_chat_llm
from interpreto.zoo import tiny_llama
from tests.model.fake_chat import serve_chat

CHATS = [
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Hi there, how are you?"}],
]


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


def _hand_generate(model, tokenizer, chat, n):
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def test_local_greedy_answers_equal_a_plain_generate_and_batching_does_not_change_them(llama):
    model, tokenizer = llama
    expected = [_hand_generate(model, tokenizer, chat, 5) for chat in CHATS]
    assert LocalChatLLM(model, tokenizer, batch_size=2).complete(CHATS, max_new_tokens=5) == expected
    assert LocalChatLLM(model, tokenizer, batch_size=1).complete(CHATS, max_new_tokens=5) == expected


def test_local_sampling_is_reproducible_with_its_seed(llama):
    model, tokenizer = llama
    first = LocalChatLLM(model, tokenizer, temperature=1.0, seed=3).complete(CHATS, max_new_tokens=6)
    again = LocalChatLLM(model, tokenizer, temperature=1.0, seed=3).complete(CHATS, max_new_tokens=6)
    assert first == again


def test_local_option_logprobs_equal_the_next_token_distribution(llama):
    model, tokenizer = llama
    llm = LocalChatLLM(model, tokenizer, batch_size=2)
    values = llm.option_logprobs(CHATS, ["yes", "no"])
    for row, chat in enumerate(CHATS):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logp = model(input_ids=ids).logits[0, -1].log_softmax(-1)
        for col, option in enumerate(["yes", "no"]):
            first = tokenizer(option, add_special_tokens=False)["input_ids"][0]
            assert abs(float(values[row, col]) - float(logp[first])) <= 1e-4 * abs(float(logp[first]))


def test_local_llm_leaves_the_model_as_it_was(llama):
    model, tokenizer = llama
    model.train()
    side = tokenizer.padding_side
    try:
        LocalChatLLM(model, tokenizer).complete(CHATS, max_new_tokens=2)
        assert model.training and tokenizer.padding_side == side
        assert not model._forward_hooks and not model._forward_pre_hooks
    finally:
        model.eval()


def test_endpoint_sends_the_conversation_and_reads_the_answer():
    def respond(messages):
        return f"  you said {messages[-1]['content']}  "

    with serve_chat(respond) as served:
        llm = OpenAIChatLLM(served.url, "served", api_key="k", seed=7, max_concurrency=2)
        answers = llm.complete(CHATS, max_new_tokens=9)
    assert answers == [f"you said {chat[0]['content']}" for chat in CHATS]
    bodies = sorted(served.requests, key=lambda b: b["messages"][0]["content"])
    assert [b["messages"] for b in bodies] == sorted(CHATS, key=lambda c: c[0]["content"])
    assert all(b["max_tokens"] == 9 and b["seed"] == 7 and b["temperature"] == 0.0 for b in bodies)


def test_endpoint_option_logprobs_match_first_tokens_case_and_space_insensitively():
    with serve_chat(
        lambda m: "Yes", option_logprobs=lambda m: {" Yes": -0.1, "no": -2.5, "Maybe": -4.0}
    ) as served:
        values = OpenAIChatLLM(served.url, "served").option_logprobs(CHATS[:1], ["yes", "No", "colour"])
    assert values[0, 0].item() == pytest.approx(-0.1) and values[0, 1].item() == pytest.approx(-2.5)
    assert values[0, 2].item() == -math.inf
    assert served.requests[0]["logprobs"] is True and served.requests[0]["max_tokens"] == 1


def test_endpoint_errors_name_the_server_and_the_model():
    with serve_chat(lambda m: "x", status=500) as served:
        with pytest.raises(RuntimeError, match="HTTP 500.*'served'"):
            OpenAIChatLLM(served.url, "served").complete(CHATS[:1])
    with serve_chat(lambda m: "x") as served:
        with pytest.raises(RuntimeError, match="HTTP 404"):
            OpenAIChatLLM(served.url, "other").complete(CHATS[:1])
    with pytest.raises(ConnectionError, match="cannot reach"):
        OpenAIChatLLM("http://127.0.0.1:9/v1", "m", retries=0, timeout=2).complete(CHATS[:1])


def test_as_chat_llm_accepts_pairs_and_functions_and_names_bad_values(llama):
    assert isinstance(as_chat_llm(llama), LocalChatLLM)
    assert as_chat_llm(lambda c: "ok").complete(CHATS) == ["ok", "ok"]
    with pytest.raises(TypeError, match="llm must be"):
        as_chat_llm("gpt-4")
    with pytest.raises(ValueError, match=r"conversations\[0\]"):
        CallableLLM(lambda c: "x").complete([[{"role": "bot", "content": "x"}]])
    with pytest.raises(ValueError, match="base_url"):
        OpenAIChatLLM("localhost:8000", "m")
    with pytest.raises(NotImplementedError):
        CallableLLM(lambda c: "x").option_logprobs(CHATS, ["a"])
