"""imagewikiqa.llm_questions against the local scripted chat-completions server (tests/chat_server.py)."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from chat_server import ChatServer, bad_request, rate_limited, reply

from builders.records import sample_rng
from imagewikiqa.json_reply import validate_json
from imagewikiqa.llm_client import ChatClient
from imagewikiqa.llm_questions import (
    PROMPTS,
    QUESTION_SCHEMA,
    build_request,
    cut_text,
    generate_llm_questions,
)
from imagewikiqa.records import Article, Question
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}
MODEL = "test-model"
TENCH, GOLDFISH, TIGER_SHARK, HAMMERHEAD, RAY = (
    "n01440764", "n01443537", "n01491361", "n01494475", "n01496331")


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    # ImageNet wnids: names and synonyms come from the bundled list (no WordNet load)
    return ClassVocabulary.from_wnids([TENCH, GOLDFISH, TIGER_SHARK, HAMMERHEAD, RAY])


ARTICLES = {
    TENCH: [Article(TENCH, "Tench", "The tench is a fresh- and brackish-water fish. It is found throughout "
                    "Europe. Tench are often found in still waters with a clay or muddy substrate. The fish "
                    "is used as bait by anglers.", "test")],
    GOLDFISH: [Article(GOLDFISH, "Goldfish", "The goldfish is a freshwater fish in the family Cyprinidae. "
                       "It was first selectively bred in ancient China more than a thousand years ago.", "test"),
               Article(GOLDFISH, "Goldfish in culture", "Goldfish are given as prizes at fairs.", "test")],
    TIGER_SHARK: [Article(TIGER_SHARK, "Tiger shark", "The tiger shark is a species of requiem shark. It is "
                          "a solitary, mostly nocturnal hunter.", "test")],
    HAMMERHEAD: [Article(HAMMERHEAD, "Hammerhead shark", "Hammerhead sharks form schools during the day. "
                         "They hunt alone at night.", "test")],
    # RAY has no article at all
}


def item(q: str, options: list[str], answer: int = 0, reference: str | None = "A supporting sentence.") -> dict:
    d: dict = {"question": q, "options": options, "answer": answer}
    if reference is not None:
        d["reference"] = reference
    return d


TENCH_ITEMS = [
    item("Where is this object found?", ["Europe", "Australia", "Antarctica", "South America"], 0,
         "It is found throughout Europe."),
    item("What do anglers use this object for?", ["Decoration", "Bait", "Food colouring", "Glue"], 1,
         "The fish is used as bait by anglers."),
    item("What is this object?", ["A fish", "A bird", "A tree"], 0),                       # wrong_option_count
    item("What water is this object found in?", ["Still", "still ", "Fast", "Salty"], 0),   # duplicate_options
    item("Which substrate does this object like?", ["Clay", "Sand", "Rock", "Ice"], 0, ""),  # no_reference
    item("How old is this object?", ["1", "2", "3", "4"], 7),                              # answer_out_of_range
]
GOLDFISH_ITEMS = [item("Where was this object first bred?", ["Egypt", "Peru", "China", "Chile"], 2,
                       "It was first selectively bred in ancient China more than a thousand years ago."),
                  item("Where is this object given as a prize?", ["Fairs", "Schools", "Banks", "Ships"], 0,
                       "Goldfish are given as prizes at fairs.")]
HAMMER_ITEMS = [item("When does this object hunt?", ["At night", "At noon", "At dawn", "Never"], 0,
                     "They hunt alone at night.")]


def payload(items: list[dict]) -> str:
    return json.dumps({"questions": items})


def class_handler(calls: Counter, lock: threading.Lock):
    """Route each request by the article it contains; per class a list of steps (first call, second, ...)."""
    steps = {
        "Tench": [reply(payload(TENCH_ITEMS))],
        # malformed, then the repair round returns valid JSON inside a ```json fence
        "Goldfish": [reply('{"questions": [{"question": "Where'),
                     reply("Sure!\n```json\n" + payload(GOLDFISH_ITEMS) + "\n```")],
        # malformed twice: rejected as llm_invalid_json
        "Tiger shark": [reply("I cannot write JSON today."), reply('{"questions": "not a list"}')],
        # a 429 (retried by the client), then success
        "Hammerhead shark": [rate_limited(0.05), reply(payload(HAMMER_ITEMS))],
    }

    def handler(req: dict, idx: int):
        user = req["messages"][1]["content"]
        title = next(t for t in steps if f"Article title: {t}\n" in user)
        with lock:
            n = calls[title]
            calls[title] += 1
        seq = steps[title]
        return seq[min(n, len(seq) - 1)]
    return handler


def generate(vocab, url, cache=None, **kw):
    with ChatClient(url, cache_dir=cache, **FAST) as client:
        return generate_llm_questions(client, ARTICLES, vocab, MODEL, per_class=5, seed=3, **kw)


def run(vocab, **kw):
    """One run against a fresh server: (questions, reasons, server, calls per article title)."""
    calls: Counter = Counter()
    with ChatServer(class_handler(calls, threading.Lock())) as srv:
        questions, reasons = generate(vocab, srv.url, **kw)
    return questions, reasons, srv, calls


def test_schema_is_valid_for_the_validator():
    assert validate_json({"questions": TENCH_ITEMS}, QUESTION_SCHEMA) is None
    assert validate_json({"questions": []}, QUESTION_SCHEMA) is not None
    assert validate_json({"questions": [{"question": "x", "options": ["a"]}]}, QUESTION_SCHEMA) is not None
    assert validate_json({"questions": [item("q", ["a", "b", "c", "d"], "b")]}, QUESTION_SCHEMA) is not None


def test_generate_questions_reasons_and_requests(vocab):
    questions, reasons, srv, calls = run(vocab)
    assert reasons == Counter({"wrong_option_count": 1, "duplicate_options": 1, "no_reference": 1,
                               "answer_out_of_range": 1, "llm_invalid_json": 1, "no_article": 1,
                               "class_below_per_class": 4})
    # 1 tench + 2 goldfish (repair) + 2 tiger shark (repair) + 2 hammerhead (429, then success)
    assert srv.count == 7
    assert calls == Counter({"Tench": 1, "Goldfish": 2, "Tiger shark": 2, "Hammerhead shark": 2})
    assert [q.qid for q in questions] == [f"{TENCH}-llm-0", f"{TENCH}-llm-1", f"{GOLDFISH}-llm-0",
                                          f"{GOLDFISH}-llm-1", f"{HAMMERHEAD}-llm-0"]

    by_qid = {q.qid: q for q in questions}
    q = by_qid[f"{TENCH}-llm-1"]
    assert (q.class_id, q.class_name, q.generator, q.kind, q.source) == (
        TENCH, "tench", f"llm:{MODEL}", "article", "Tench")
    assert q.question == "What do anglers use this object for?"
    assert q.answer == "Bait" and sorted(q.options) == sorted(["Decoration", "Bait", "Food colouring", "Glue"])
    assert q.reference == "The fish is used as bait by anglers."
    assert Question.from_json(q.to_json()) == q
    # options re-shuffled with sample_rng(seed, "llm", qid): answer_index follows the correct option
    order = list(range(4))
    sample_rng(3, "llm", q.qid).shuffle(order)
    assert q.options == [TENCH_ITEMS[1]["options"][j] for j in order]
    assert q.answer_index == order.index(1)
    # two articles concatenated; the source is the article the reference was copied from
    assert by_qid[f"{GOLDFISH}-llm-0"].source == "Goldfish"
    assert by_qid[f"{GOLDFISH}-llm-1"].source == "Goldfish in culture"
    assert by_qid[f"{GOLDFISH}-llm-0"].answer == "China"
    assert by_qid[f"{HAMMERHEAD}-llm-0"].answer == "At night"

    # the first request of each class: system + user with article text and the "this object" rule
    firsts = {}
    for body in srv.requests:
        if len(body["messages"]) == 2:
            firsts[body["messages"][1]["content"].split("Article title: ")[1].split("\n")[0]] = body
    assert set(firsts) == {"Tench", "Goldfish", "Tiger shark", "Hammerhead shark"}
    body = firsts["Goldfish"]
    system, user = body["messages"][0], body["messages"][1]
    assert system["role"] == "system" and system["content"] == PROMPTS["system"]
    assert ARTICLES[GOLDFISH][0].text in user["content"] and ARTICLES[GOLDFISH][1].text in user["content"]
    assert '"this object"' in user["content"] and "Write 5 multiple-choice questions" in user["content"]
    assert '"goldfish"' in user["content"] and '"Carassius auratus"' in user["content"]
    assert body["temperature"] == 0.0 and body["seed"] == 3 and body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    # repair requests carry the bad reply and the error
    repairs = [b for b in srv.requests if len(b["messages"]) == 4]
    assert len(repairs) == 2 and all("not valid" in b["messages"][3]["content"] for b in repairs)


def test_deterministic_and_cache_second_run_sends_nothing(vocab, tmp_path):
    with ChatServer(class_handler(Counter(), threading.Lock())) as srv:
        first, reasons1 = generate(vocab, srv.url, cache=tmp_path / "cache")
        assert srv.count == 7
        second, reasons2 = generate(vocab, srv.url, cache=tmp_path / "cache")   # a new client, same cache
        assert srv.count == 7                 # zero new requests: every reply (repairs too) was cached
    assert reasons2 == reasons1
    assert [q.to_json() for q in second] == [q.to_json() for q in first]
    third, reasons3, _, _ = run(vocab)        # no cache, a fresh server: the same questions
    assert [q.to_json() for q in third] == [q.to_json() for q in first] and reasons3 == reasons1
    other, _, srv4, _ = run(vocab, json_mode=False)
    assert [q.qid for q in other] == [q.qid for q in first]
    assert all("response_format" not in body for body in srv4.requests)


def test_shuffle_breaks_the_models_position_habit(vocab):
    # the model always puts the correct answer first; after the seeded shuffle every letter occurs
    items = [item(f"Question {i} about this object?", [f"right {i}", f"w1 {i}", f"w2 {i}", f"w3 {i}"], 0,
                  "Tench are often found in still waters with a clay or muddy substrate.") for i in range(20)]
    with ChatServer(lambda req, idx: reply(payload(items))) as srv, ChatClient(srv.url, **FAST) as client:
        questions, reasons = generate_llm_questions(client, {TENCH: ARTICLES[TENCH]}, vocab, MODEL,
                                                    per_class=20, seed=0)
        again, _ = generate_llm_questions(client, {TENCH: ARTICLES[TENCH]}, vocab, MODEL, per_class=20, seed=1)
    assert srv.count == 2 and len(questions) == 20
    assert all(q.answer.startswith("right") for q in questions)
    assert set(Counter(q.answer_index for q in questions)) == {0, 1, 2, 3}
    assert [q.options for q in again] != [q.options for q in questions]   # another seed, another order
    assert srv.requests[0]["seed"] == 0 and srv.requests[1]["seed"] == 1
    assert reasons["no_article"] == 4 and reasons["class_below_per_class"] == 0
    # more valid items than per_class: the rest is counted
    with ChatServer(lambda req, idx: reply(payload(items))) as srv, ChatClient(srv.url, **FAST) as client:
        questions, reasons = generate_llm_questions(client, {TENCH: ARTICLES[TENCH]}, vocab, MODEL, per_class=3)
    assert [q.qid for q in questions] == [f"{TENCH}-llm-{i}" for i in range(3)]
    assert reasons["over_per_class"] == 17


def test_request_failed_and_unknown_class(vocab):
    with ChatServer(lambda req, idx: bad_request("model not found")) as srv, \
            ChatClient(srv.url, **FAST) as client:
        questions, reasons = generate_llm_questions(
            client, {TENCH: ARTICLES[TENCH], "n99999999": ARTICLES[TENCH]}, vocab, MODEL)
    assert questions == [] and srv.count == 1   # a 400 is not retried
    assert reasons == Counter({"llm_request_failed": 1, "unknown_class": 1, "no_article": 4,
                               "class_below_per_class": 1})


def test_no_articles_sends_nothing_and_bad_arguments(vocab):
    with ChatServer() as srv, ChatClient(srv.url, **FAST) as client:
        questions, reasons = generate_llm_questions(client, {}, vocab, MODEL)
        assert questions == [] and reasons == Counter({"no_article": 5}) and srv.count == 0
        with pytest.raises(UserError):
            generate_llm_questions(client, ARTICLES, vocab, MODEL, per_class=0)
        with pytest.raises(UserError):
            generate_llm_questions(client, ARTICLES, vocab, MODEL, max_chars=0)


def test_build_request_cuts_long_articles_at_sentence_boundaries():
    sentences = [f"Sentence number {i} says something about the object." for i in range(200)]
    art = Article("c", "Long", " ".join(sentences), "test")
    req = build_request(art, "widget", 3, MODEL, 7, max_chars=500, synonyms=["gizmo", "Widget"])
    user = req.messages[1]["content"]
    text = user.split('Article:\n"""\n')[1].rsplit('\n"""', 1)[0]
    assert len(text) <= 500 and text.endswith("object.") and text.startswith("Sentence number 0 ")
    assert sentences[8] in text and sentences[9] not in text   # 9 sentences of 53 chars + spaces fit
    assert "(also called gizmo)" in user and '"widget", "gizmo"' in user and "Write 3 " in user
    assert req.seed == 7 and req.temperature == 0.0 and req.max_tokens > 512
    assert [m["role"] for m in req.messages] == ["system", "user"]
    assert build_request(art, "widget", 3, MODEL, 7, max_chars=500).messages == \
        build_request(art, "widget", 3, MODEL, 7, max_chars=500).messages
    with pytest.raises(UserError):
        build_request(art, "widget", 0, MODEL, 7)


def test_cut_text_fallbacks():
    assert cut_text("  Short text.  ", 100) == "Short text."
    assert cut_text("First line without stop\nSecond line goes on and on", 30) == "First line without stop"
    assert cut_text("Mr. Smith went to Washington. He came back.", 35) == "Mr. Smith went to Washington."
    assert cut_text("one two three four five six", 12) == "one two"     # no sentence end: last space
    assert cut_text("abcdefghijklmnop", 5) == "abcde"                   # no space: hard cut
