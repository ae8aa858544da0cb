"""The local transformers text backend: a tiny random causal LM (and a scripted tiny LLaVA) saved and loaded
back offline, answering chat requests through the same interface as the HTTP client."""

from __future__ import annotations

import json
import os

import pytest

from imagewikiqa.chat import ChatRequest
from imagewikiqa.local_backend import LocalChatModel
from vlm_classdata.vlm.tiny import make_scripted_llava, make_tiny_causal_lm

os.environ["HF_HUB_OFFLINE"] = "1"

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


def _req(text: str, max_tokens: int = 6, system: str | None = None) -> ChatRequest:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return ChatRequest(messages=messages, model="tiny", max_tokens=max_tokens)


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory) -> str:
    return make_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny_lm")), seed=1)


def test_causal_lm_batched_equals_one_by_one_and_is_cached(causal_lm, tmp_path):
    reqs = [_req("What is a tench?"), _req("Name a part of a stretcher, please.", system="Be brief."),
            _req("Is a tabby cat a kind of domestic cat?", max_tokens=3), _req("What is a tench?")]
    batched = LocalChatModel.load(causal_lm, batch_size=4, cache_dir=tmp_path / "cache")
    assert type(batched.vlm.model).__name__ == "LlamaForCausalLM"
    first = batched.complete_many(reqs)
    assert all(r.ok and not r.cached for r in first)
    assert first[0].text == first[3].text  # greedy: same request, same reply
    single = LocalChatModel(batched.vlm, batch_size=1)
    assert [r.text for r in single.complete_many(reqs)] == [r.text for r in first]
    # a new backend on the same cache answers every request from disk: nothing is generated again
    again = LocalChatModel(batched.vlm, cache_dir=tmp_path / "cache")
    again.vlm = None  # any generation would now fail
    rerun = again.complete_many(reqs)
    assert all(r.cached for r in rerun) and [r.text for r in rerun] == [r.text for r in first]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 3  # distinct requests


def test_gibberish_json_is_repaired_once_then_rejected_with_reason(causal_lm):
    backend = LocalChatModel.load(causal_lm)
    [res] = backend.complete_json_many([_req("Reply with JSON.")], SCHEMA)
    assert not res.ok and res.repaired and res.error.startswith("invalid_after_repair")


def test_scripted_vlm_used_text_only_answers_json(tmp_path):
    path = make_scripted_llava(str(tmp_path / "scripted"), "[42]")  # a scripted reply needs distinct tokens
    backend = LocalChatModel.load(path)
    schema = {"type": "array", "items": {"type": "integer"}}
    [res] = backend.complete_json_many([_req("How many legs? Reply with a JSON list.", max_tokens=8)], schema)
    assert res.ok and not res.repaired and res.value == [42]


def test_llm_generator_runs_on_the_local_backend_with_the_same_prompts(causal_lm, tmp_path):
    """The generator's requests go through the local model batched; a random model writes no valid JSON, so
    every class is rejected with the reason kept (after one repair round each)."""
    from imagewikiqa.llm_questions import build_request, generate_llm_questions
    from imagewikiqa.records import Article
    from vlm_classdata.vocabulary import ClassVocabulary

    vocab = ClassVocabulary.bundled("imagenet1k").subset(["n01440764", "n04336792"])
    articles = {cid: [Article(cid, vocab[cid].name, f"The {vocab[cid].name} is an object. It is useful.", "test")]
                for cid in vocab.ids}
    backend = LocalChatModel.load(causal_lm, cache_dir=tmp_path / "cache", batch_size=2)
    # one question per class: the reply budget (and so what an untrained model writes) is the smallest
    questions, reasons = generate_llm_questions(backend, articles, vocab, "tiny", per_class=1)
    assert questions == [] and reasons["llm_invalid_json"] == 2
    cached = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("*.json")]
    assert len(cached) == 4  # 2 first attempts + 2 repairs
    first = build_request(articles["n01440764"][0], "tench", 1, "tiny", 0, synonyms=("Tinca tinca",))
    assert any(c["request"]["messages"] == first.messages for c in cached)
