"""imagewikiqa.verify_text against a real ChatClient and the local chat server (tests/chat_server.py)."""

from __future__ import annotations

import dataclasses

import pytest
from chat_server import ChatServer, bad_request, reply

from imagewikiqa.llm_client import ChatClient
from imagewikiqa.records import Question
from imagewikiqa.verify_text import (
    REASONS,
    option_orders,
    substitute_name,
    verification_summary,
    verify_questions,
)
from vlm_classdata.answers import parse_options
from vlm_classdata.errors import UserError

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0, "max_retries": 0}
TENCH, TABBY, STRETCHER = "n01440764", "n02123045", "n04336792"
NAMES = {TENCH: "tench", TABBY: "tabby cat", STRETCHER: "stretcher"}


def mk(qid: str, class_id: str, question: str, options: list[str], answer_index: int) -> Question:
    return Question(qid=qid, class_id=class_id, class_name=NAMES[class_id], question=question, options=options,
                    answer_index=answer_index, reference="ref", source="test", generator="llm", kind="fact")


KEEP = mk("keep", TENCH, "What does this object mainly eat?", ["hay", "insect larvae", "seeds", "grass"], 1)
BLIND = mk("blind", TENCH, "Which continent is this object native to?",
           ["Europe", "Africa", "Australia", "Antarctica"], 0)
WRONG = mk("wrong", TABBY, "How many legs does this object have?", ["two", "four", "six", "eight"], 1)
UNK_WITH = mk("unk_with", STRETCHER, "What is this object used to carry?",
              ["water", "books", "injured people", "letters"], 2)
UNK_WITHOUT = mk("unk_without", TENCH, "What colour are this object's eyes?",
                 ["blue", "green", "black", "red-orange"], 3)
FAIL = mk("fail", TENCH, "How long can this object live?", ["1 day", "1 month", "1 year", "20 years"], 3)
ALL = [KEEP, BLIND, WRONG, UNK_WITH, UNK_WITHOUT, FAIL]


class Model:
    """A scripted text-only "model": it knows a question's answer only when the class name is in the prompt
    (then it answers with the letter of the option it believes in), and answers "A" without it. Questions
    in ``unparseable`` (by question text as sent) get a reply with no option in it; ``fail`` gets HTTP 400."""

    def __init__(self, questions: list[Question], beliefs: dict[str, str] | None = None,
                 unparseable: tuple[str, ...] = (), fail: tuple[str, ...] = (), always_a: bool = False) -> None:
        beliefs = beliefs or {}
        self.facts = {substitute_name(q.question, q.class_name): beliefs.get(q.qid, q.answer) for q in questions}
        self.unparseable, self.fail, self.always_a = set(unparseable), set(fail), always_a

    def __call__(self, req: dict, idx: int):
        prompt = req["messages"][-1]["content"]
        stem, options = parse_options(prompt)
        assert len(options) == 4 and prompt.endswith("Choose A, B, C, or D.")
        if stem in self.fail:
            return bad_request("model overloaded")
        if stem in self.unparseable:
            return reply("Hmm.")
        if self.always_a or stem not in self.facts:
            return reply("A")
        return reply(f"Answer: {'ABCD'[options.index(self.facts[stem])]}")


class CountingClient(ChatClient):
    """The real client, counting how often verification calls ``complete_many``."""

    calls = 0

    def complete_many(self, reqs, progress=False):
        self.calls += 1
        return super().complete_many(reqs, progress=progress)


def scripted_model() -> Model:
    return Model(ALL, beliefs={"wrong": "six"},
                 unparseable=(substitute_name(UNK_WITH.question, "stretcher"), UNK_WITHOUT.question),
                 fail=(substitute_name(FAIL.question, "tench"), FAIL.question))


# ----- substitute_name -----------------------------------------------------------------------------------
@pytest.mark.parametrize("question, expected", [
    ("What does this object eat?", "What does the tench eat?"),
    ("This object lives where?", "The tench lives where?"),
    ("What colour are this object's eyes?", "What colour are the tench's eyes?"),
    ("This object’s fins are what colour?", "The tench’s fins are what colour?"),
    ("What does THIS OBJECT eat, and where does this  object sleep?",
     "What does the tench eat, and where does the tench sleep?"),
    ("Fish like it. This object is eaten by what?", "Fish like it. The tench is eaten by what?"),
    ("\"This object\" is related to which fish?", "\"The tench\" is related to which fish?"),
    ("Are these objects or thisobject or this objects renamed?",
     "Are these objects or thisobject or this objects renamed?"),
])
def test_substitute_name(question, expected):
    assert substitute_name(question, "tench") == expected


# ----- option orders -----------------------------------------------------------------------------------------
def test_option_orders_original_first_distinct_seeded():
    orders = option_orders(KEEP, 5, seed=0)
    assert orders[0] == [0, 1, 2, 3] and len(orders) == 5
    assert len({tuple(o) for o in orders}) == 5 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert option_orders(KEEP, 5, seed=0) == orders
    assert option_orders(KEEP, 5, seed=1) != orders
    assert option_orders(BLIND, 5, seed=0) != orders  # per question
    assert option_orders(KEEP, 3, seed=0) == orders[:3]
    assert len(option_orders(KEEP, 100, seed=0)) == 24  # capped at 4! distinct orders


# ----- verification -----------------------------------------------------------------------------------------
def test_every_reason_with_one_batch_of_requests():
    with ChatServer(scripted_model()) as srv, CountingClient(srv.url, **FAST) as client:
        kept, verdicts, reasons = verify_questions(ALL, client, model="text-llm")
        assert srv.count == 2 * len(ALL)  # one with-name and one as-is prompt per question, no retries
        assert client.calls == 1  # all requests of the run in one batch
        sent = [r["messages"][-1]["content"] for r in srv.requests]
    assert [q.qid for q in kept] == ["keep"]
    by = {v["qid"]: v for v in verdicts}
    assert [v["qid"] for v in verdicts] == [q.qid for q in ALL]
    assert {q: by[q]["reason"] for q in by} == {
        "keep": None, "blind": "answerable_without_name", "wrong": "not_answerable_with_name",
        "unk_with": "unknown_with_name", "unk_without": "unknown_without_name", "fail": "request_failed"}
    assert set(reasons) == set(REASONS) and all(n == 1 for n in reasons.values())
    assert by["keep"]["with_name"] == ["correct"] and by["keep"]["without_name"] == ["wrong"]
    assert by["keep"]["kept"] and by["keep"]["replies"] == {"with_name": ["Answer: B"], "without_name": ["A"]}
    assert by["wrong"]["with_name"] == ["wrong"]
    assert by["unk_with"]["with_name"] == ["unknown"]
    # an unparseable reply is "unknown", never "wrong", and it rejects the question
    assert by["unk_without"]["with_name"] == ["correct"] and by["unk_without"]["without_name"] == ["unknown"]
    assert not by["unk_without"]["kept"]
    assert by["fail"]["with_name"] == ["unknown"] and by["fail"]["replies"]["with_name"] == [None]
    assert by["fail"]["errors"]["without_name"][0].startswith("http_400")
    # the prompts: the MCQ layout of Question.prompt, with the name substituted and as-is
    assert KEEP.prompt(question="What does the tench mainly eat?") in sent
    assert KEEP.prompt() in sent
    assert not any("this object" in p.lower() and "tench" in p for p in sent)


def test_summary_counts_and_baselines():
    with ChatServer(scripted_model()) as srv, ChatClient(srv.url, **FAST) as client:
        _, verdicts, reasons = verify_questions(ALL, client, model="text-llm")
    summary = verification_summary(verdicts)
    assert summary["questions"] == 6 and summary["kept"] == 1 and summary["rejected"] == 5
    assert summary["reasons"] == dict(sorted(reasons.items()))
    # the failed question is not counted as checked; unknown counts as not correct
    assert summary["checked_without_name"] == 5 and summary["checked_with_name"] == 5
    assert summary["text_only_accuracy_without_name"] == pytest.approx(1 / 5)  # only "blind" (answer A)
    assert summary["with_name_accuracy"] == pytest.approx(3 / 5)  # keep, blind, unk_without
    assert verification_summary([])["text_only_accuracy_without_name"] is None


def test_permutations_require_consistency():
    questions = [KEEP, BLIND]
    # a guesser that always answers "A" fails under permutations even where the key is at A
    with ChatServer(Model(questions, always_a=True)) as srv, ChatClient(srv.url, **FAST) as client:
        kept, verdicts, reasons = verify_questions(questions, client, model="m", permutations=24)
        assert srv.count == 2 * 24 * len(questions)
    assert kept == [] and reasons == {"not_answerable_with_name": 2}
    for v in verdicts:
        assert len(v["with_name"]) == 24 and v["with_name"].count("correct") == 6  # answer at A in 6 orders
        assert v["without_name"].count("correct") == 6
        assert [letter == "A" for letter in v["correct_letters"]] == [x == "correct" for x in v["with_name"]]

    # a model that knows the answers with the name, and says "A" without: KEEP passes in its original order
    # (key at B), but some order puts the key at A, where the blind "A" is right
    with ChatServer(Model(questions)) as srv, ChatClient(srv.url, **FAST) as client:
        kept1, _, _ = verify_questions([KEEP], client, model="m", permutations=1)
        kept24, verdicts, reasons = verify_questions([KEEP], client, model="m", permutations=24)
        assert srv.count == 2 + 2 * 24  # no cache_dir: the second run asks its original order again
    assert [q.qid for q in kept1] == ["keep"] and kept24 == []
    assert verdicts[0]["with_name"] == ["correct"] * 24 and reasons == {"answerable_without_name": 1}


def test_identical_prompts_are_sent_once_and_results_stay_per_question():
    twin = dataclasses.replace(KEEP, qid="keep-twin")
    with ChatServer(Model([KEEP])) as srv, ChatClient(srv.url, **FAST) as client:
        kept, verdicts, _ = verify_questions([KEEP, twin], client, model="m", progress=True)
        assert srv.count == 2  # the twin's prompts are the same two requests
    assert [q.qid for q in kept] == ["keep", "keep-twin"]
    assert [v["qid"] for v in verdicts] == ["keep", "keep-twin"]
    assert verdicts[0]["with_name"] == verdicts[1]["with_name"] == ["correct"]


def test_cache_makes_a_rerun_send_zero_requests(tmp_path):
    questions = [KEEP, BLIND, WRONG, UNK_WITHOUT]
    model = Model(questions, unparseable=(UNK_WITHOUT.question,))
    with ChatServer(model) as srv:
        with ChatClient(srv.url, cache_dir=tmp_path / "cache", **FAST) as client:
            first = verify_questions(questions, client, model="m", permutations=3, seed=7)
        assert srv.count == 2 * 3 * len(questions)
        with ChatClient(srv.url, cache_dir=tmp_path / "cache", **FAST) as client:
            second = verify_questions(questions, client, model="m", permutations=3, seed=7)
        assert srv.count == 2 * 3 * len(questions)  # zero new requests
    assert [q.qid for q in first[0]] == [q.qid for q in second[0]]
    assert first[1] == second[1] and first[2] == second[2]


def test_bad_arguments_are_user_errors():
    with ChatServer() as srv, ChatClient(srv.url, **FAST) as client:
        with pytest.raises(UserError, match="permutations"):
            verify_questions([KEEP], client, model="m", permutations=0)
        with pytest.raises(UserError, match="answer_index"):
            verify_questions([dataclasses.replace(KEEP, answer_index=7)], client, model="m")
        with pytest.raises(UserError, match="complete_many"):
            verify_questions([KEEP], object(), model="m")
        assert verify_questions([], client, model="m") == ([], [], {})
        assert srv.count == 0
