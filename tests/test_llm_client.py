"""ChatClient against the local scriptable chat-completions server (tests/chat_server.py)."""

from __future__ import annotations

import json
import time

import pytest
from chat_server import ChatServer, bad_request, rate_limited, reply, scripted, server_error, slow

from imagewikiqa.chat import ChatRequest
from imagewikiqa.json_reply import parse_json_reply, validate_json
from imagewikiqa.llm_client import ChatClient
from vlm_classdata.errors import UserError

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0}


def req(text: str = "hi", **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], model="m", **kw)


def test_success_payload_headers_and_usage():
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    with ChatServer(scripted(reply("hello", usage=usage))) as srv, \
            ChatClient(srv.url, api_key="sk-test", **FAST) as client:
        res = client.complete(req(response_format={"type": "json_object"}, seed=7))
    assert (res.text, res.error, res.cached, res.attempts) == ("hello", None, False, 1)
    assert res.usage == usage
    body = srv.requests[0]
    assert body["model"] == "m" and body["messages"][0]["content"] == "hi"
    assert body["response_format"] == {"type": "json_object"} and body["seed"] == 7
    assert body["temperature"] == 0.0 and body["max_tokens"] == 512
    assert srv.headers[0]["Authorization"] == "Bearer sk-test"


def test_no_authorization_header_without_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer() as srv, ChatClient(srv.url, **FAST) as client:
        assert client.complete(req("echo me")).text == "echo me"
    assert "Authorization" not in srv.headers[0]
    assert "seed" not in srv.requests[0] and "response_format" not in srv.requests[0]


def test_cache_second_run_makes_zero_requests(tmp_path):
    reqs = [req(f"q{i}") for i in range(5)]
    with ChatServer() as srv:
        with ChatClient(srv.url, cache_dir=tmp_path / "cache", **FAST) as c1:
            first = c1.complete_many(reqs)
        assert srv.count == 5 and not any(r.cached for r in first)
        with ChatClient(srv.url, cache_dir=tmp_path / "cache", **FAST) as c2:
            second = c2.complete_many(reqs)
        assert srv.count == 5  # zero new HTTP calls
    assert [r.text for r in second] == [f"q{i}" for i in range(5)]
    assert all(r.cached and r.attempts == 0 for r in second)
    key = reqs[0].key(srv.url)
    stored = tmp_path / "cache" / key[:2] / f"{key}.json"
    assert json.loads(stored.read_text())["text"] == "q0"
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_errors_are_not_cached(tmp_path):
    with ChatServer(scripted(bad_request("nope"), reply("later ok"))) as srv, \
            ChatClient(srv.url, cache_dir=tmp_path, **FAST) as client:
        assert client.complete(req()).error == "http_400: nope"
        again = client.complete(req())
    assert again.text == "later ok" and not again.cached and srv.count == 2


def test_cache_key_depends_on_fields_and_base_url():
    a = req("x")
    assert a.key("http://h/v1") == req("x").key("http://h/v1/")
    assert a.key("http://h/v1") != a.key("http://other/v1")
    assert a.key() != req("x", temperature=0.5).key()
    assert a.key() != req("x", seed=1).key()
    assert a.key() != req("x", response_format={"type": "json_object"}).key()
    assert len(a.key()) == 64


def test_429_honours_retry_after():
    with ChatServer(scripted(rate_limited(0.3), reply("ok"))) as srv, \
            ChatClient(srv.url, backoff=0.0, max_backoff=0.0, timeout=2.0) as client:
        t0 = time.monotonic()
        res = client.complete(req())
        elapsed = time.monotonic() - t0
    assert res.text == "ok" and res.attempts == 2 and srv.count == 2
    assert elapsed >= 0.3


def test_retry_after_is_capped():
    with ChatServer(scripted(rate_limited(30), reply("ok"))) as srv, \
            ChatClient(srv.url, max_retry_after=0.05, **FAST) as client:
        t0 = time.monotonic()
        res = client.complete(req())
    assert res.text == "ok" and time.monotonic() - t0 < 2.0 and srv.count == 2


def test_500_twice_then_success():
    with ChatServer(scripted(server_error(), server_error(503), reply("fine"))) as srv, \
            ChatClient(srv.url, **FAST) as client:
        res = client.complete(req())
    assert (res.text, res.error, res.attempts) == ("fine", None, 3)
    assert srv.count == 3


def test_timeout_then_success():
    with ChatServer(scripted(slow(1.5), reply("fast"))) as srv, \
            ChatClient(srv.url, backoff=0.01, timeout=0.3) as client:
        t0 = time.monotonic()
        res = client.complete(req())
        elapsed = time.monotonic() - t0
    assert res.text == "fast" and res.attempts == 2 and srv.count == 2
    assert 0.3 <= elapsed < 1.4


def test_400_not_retried():
    with ChatServer(scripted(bad_request("bad request: unknown field 'foo'\nsecond line"))) as srv, \
            ChatClient(srv.url, **FAST) as client:
        res = client.complete(req())
    assert res.text is None and res.error == "http_400: bad request: unknown field 'foo'"
    assert res.attempts == 1 and srv.count == 1


def test_max_retries_exhausted_is_an_error_result():
    with ChatServer(scripted(server_error(502, "upstream down"))) as srv, \
            ChatClient(srv.url, max_retries=2, **FAST) as client:
        res = client.complete(req())
    assert res.text is None and res.error.startswith("http_502:") and "upstream down" in res.error
    assert res.attempts == 3 and srv.count == 3


def test_connection_refused_is_an_error_result():
    with ChatServer() as srv:
        url = srv.url
    with ChatClient(url, max_retries=1, **FAST) as client:
        res = client.complete(req())
    assert res.text is None and res.error.startswith("connection_error") and res.attempts == 2


def test_malformed_200_body_is_an_error():
    with ChatServer(scripted((200, "<html>proxy</html>", {}))) as srv, ChatClient(srv.url, **FAST) as client:
        res = client.complete(req())
    assert res.error == "bad_response: <html>proxy</html>" and res.attempts == 1


def test_concurrency_limit_and_order():
    def handler(body, idx):
        return slow(0.2, reply(body["messages"][-1]["content"].upper()))(body, idx)

    reqs = [req(f"item{i}") for i in range(12)]
    with ChatServer(handler) as srv, ChatClient(srv.url, concurrency=3, **FAST) as client:
        results = client.complete_many(reqs, progress=True)
    assert srv.max_in_flight == 3
    assert [r.text for r in results] == [f"ITEM{i}" for i in range(12)]


def test_order_preserved_with_uneven_latency():
    def handler(body, idx):
        n = int(body["messages"][-1]["content"])
        return slow(0.02 * (8 - n), reply(str(n)))(body, idx)

    with ChatServer(handler) as srv, ChatClient(srv.url, concurrency=8, **FAST) as client:
        results = client.complete_many([req(str(i)) for i in range(8)])
    assert [r.text for r in results] == [str(i) for i in range(8)]
    assert client.complete_many([]) == []


SCHEMA = {
    "type": "object", "required": ["question", "answer", "options"],
    "properties": {
        "question": {"type": "string", "minLength": 3},
        "answer": {"type": "string", "enum": ["A", "B", "C"]},
        "options": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
    },
}
GOOD = {"question": "What is it?", "answer": "B", "options": ["x", "y", "z"]}


def test_complete_json_valid_with_fence():
    with ChatServer(scripted(reply("```json\n" + json.dumps(GOOD) + "\n```"))) as srv, \
            ChatClient(srv.url, **FAST) as client:
        res = client.complete_json(req(), SCHEMA)
    assert res.ok and res.value == GOOD and not res.repaired and srv.count == 1


def test_complete_json_repaired_once():
    bad = json.dumps({**GOOD, "answer": "D"})
    with ChatServer(scripted(reply(bad), reply(json.dumps(GOOD)))) as srv, \
            ChatClient(srv.url, **FAST) as client:
        res = client.complete_json(req("make a question"), SCHEMA)
    assert res.ok and res.value == GOOD and res.repaired
    assert srv.count == 2
    repair_msgs = srv.requests[1]["messages"]
    assert repair_msgs[0]["content"] == "make a question"
    assert repair_msgs[1] == {"role": "assistant", "content": bad}
    assert "$.answer" in repair_msgs[2]["content"] and "is not one of" in repair_msgs[2]["content"]


def test_complete_json_rejected_after_failed_repair():
    with ChatServer(scripted(reply("not json {"), reply(json.dumps({"question": "Why?"})))) as srv, \
            ChatClient(srv.url, **FAST) as client:
        res = client.complete_json(req(), SCHEMA)
    assert res.value is None and res.repaired and srv.count == 2
    assert res.error == "invalid_after_repair: schema: $: missing required property 'answer'"
    assert res.raw == json.dumps({"question": "Why?"})
    assert "not valid JSON" in srv.requests[1]["messages"][-1]["content"]


def test_complete_json_no_repair_and_request_failure():
    with ChatServer(scripted(reply("[]"), bad_request("quota"))) as srv, ChatClient(srv.url, **FAST) as client:
        no_repair = client.complete_json(req("a"), SCHEMA, repair=False)
        failed = client.complete_json(req("b"), SCHEMA)
    assert no_repair.error == "schema: $: expected object, got array" and not no_repair.repaired
    assert failed.error == "request_failed: http_400: quota" and srv.count == 2


def test_complete_json_many_keeps_order(tmp_path):
    def handler(body, idx):
        return reply(json.dumps({**GOOD, "question": body["messages"][-1]["content"]}))

    with ChatServer(handler) as srv, ChatClient(srv.url, concurrency=4, cache_dir=tmp_path, **FAST) as c:
        out = c.complete_json_many([req(f"question {i}") for i in range(6)], SCHEMA)
    assert [r.value["question"] for r in out] == [f"question {i}" for i in range(6)]


def test_parse_json_reply():
    assert parse_json_reply('```json\n{"a": 1}\n```') == ({"a": 1}, None)
    assert parse_json_reply('Sure! Here it is: {"a": [1, 2]} Hope that helps.') == ({"a": [1, 2]}, None)
    assert parse_json_reply("```\n[1]\n```") == ([1], None)
    value, err = parse_json_reply("no json here")
    assert value is None and err.startswith("not valid JSON")
    assert parse_json_reply("   ") == (None, "empty reply")


@pytest.mark.parametrize("value,schema,error", [
    ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}}, None),
    (1.0, {"type": "integer"}, None),
    (1.5, {"type": "integer"}, "$: expected integer, got number"),
    (True, {"type": "integer"}, "$: expected integer, got boolean"),
    (True, {"type": "number"}, "$: expected number, got boolean"),
    (3, {"type": "number", "minimum": 0}, None),
    ("x", {"type": ["string", "null"]}, None),
    (None, {"type": ["string", "null"]}, None),
    ({}, {"type": "object", "required": ["q"]}, "$: missing required property 'q'"),
    ({"q": 2}, {"type": "object", "properties": {"q": {"type": "string"}}}, "$.q: expected string, got integer"),
    ([1, "2"], {"type": "array", "items": {"type": "integer"}}, "$[1]: expected integer, got string"),
    ([1], {"type": "array", "minItems": 2}, "$: expected at least 2 items, got 1"),
    ([1, 2, 3], {"type": "array", "maxItems": 2}, "$: expected at most 2 items, got 3"),
    ("", {"type": "string", "minLength": 1}, "$: string shorter than 1"),
    ("C", {"enum": ["A", "B"]}, "$: \"C\" is not one of ['A', 'B']"),
    (False, {"type": "boolean"}, None),
    ({"a": {"b": [{"c": 1}]}},
     {"type": "object", "properties": {"a": {"type": "object", "properties": {
         "b": {"type": "array", "items": {"type": "object", "required": ["d"]}}}}}},
     "$.a.b[0]: missing required property 'd'"),
    ({"a": 1, "z": 2}, {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
     "$: unexpected property 'z'"),
])
def test_validate_json(value, schema, error):
    assert validate_json(value, schema) == error


def test_validate_json_bad_schema_is_user_error():
    with pytest.raises(UserError, match="unsupported type 'str'"):
        validate_json("x", {"type": "str"})


@pytest.mark.parametrize("kwargs,match", [
    ({"base_url": "ftp://host/v1"}, "http"),
    ({"base_url": "localhost:8000/v1"}, "http"),
    ({"base_url": "http://127.0.0.1:1/v1/chat/completions"}, "stop before"),
    ({"base_url": "http://127.0.0.1:1/v1", "concurrency": 0}, "concurrency"),
    ({"base_url": "http://127.0.0.1:1/v1", "timeout": 0}, "timeout"),
])
def test_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        ChatClient(**kwargs)


def test_partial_cache_resumes_only_missing(tmp_path):
    reqs = [req(f"r{i}") for i in range(5)]
    with ChatServer() as srv, ChatClient(srv.url, cache_dir=tmp_path, **FAST) as c:
        c.complete_many(reqs[:2])  # a run stopped after two requests
        out = c.complete_many(reqs)
    assert srv.count == 5
    assert [r.cached for r in out] == [True, True, False, False, False]


def test_server_stops_by_itself_and_wakes_sleepers():
    srv = ChatServer(slow(30), max_lifetime=0.5).start()
    with ChatClient(srv.url, max_retries=0, timeout=10.0) as client:
        t0 = time.monotonic()
        res = client.complete(req())
        elapsed = time.monotonic() - t0
    srv.stop()  # idempotent
    assert res.text is None and res.error and elapsed < 5.0
    assert srv._thread is not None and not srv._thread.is_alive()
