"""`python -m imagewikiqa build` reports on what it exports: the adversarial filter runs in the debias stage by
default, image pairing decides the exported questions, letters are balanced on exactly those, and the quality
report, the WordNet key check, the audit pages and the dataset card all describe that exported set.

Real builds: 60 ImageNet classes of WordNet questions with images (a synthetic ImageNet tree) for only 40 of
them, so pairing drops questions; an LLM build through a real 127.0.0.1 chat server whose questions carry a
second true option, so the key check finds problems.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import re
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from chat_server import ChatServer, reply
from PIL import Image

from builders.synthetic import make_imagenet_tree
from cards.check import check_folder
from cards.write import write_card
from imagewikiqa.__main__ import main
from imagewikiqa.audit import key_check
from imagewikiqa.audit_pages import audit_sample
from imagewikiqa.evaluate import load_benchmark
from imagewikiqa.quality import cross_class_duplicates, leak_check
from imagewikiqa.records import Question
from vlm_classdata.errors import run_cli
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import synset_from_wnid

VOCAB = ClassVocabulary.bundled("imagenet1k")
CLASSES = VOCAB.ids[:60]
WITH_IMAGES = CLASSES[:40]
SEED = 3


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in-process (WordNet stays loaded between builds); return its exit code and stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = run_cli(main, argv)
    return rc, buf.getvalue()


def _args(out: Path, tree: Path, *extra: str) -> list[str]:
    return ["build", "--out", str(out), "--class-ids", ",".join(CLASSES), "--seed", str(SEED), "--images",
            str(tree), "--no-progress", "--audit", "5", *extra]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _questions(path: Path) -> list[Question]:
    return [Question.from_json(r) for r in _jsonl(path)]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """The 60-class build with images for 40 classes and ``--audit 5``: (OUT, image tree, stdout)."""
    base = tmp_path_factory.mktemp("wire")
    tree = base / "tree"
    make_imagenet_tree(tree, WITH_IMAGES, train_per_class=0, val_per_class=1, seed=1)
    out = base / "bench"
    rc, printed = _cli(_args(out, tree))
    assert rc == 0, printed
    return out, tree, printed


def test_the_report_describes_exactly_the_exported_questions(built):
    out, _, printed = built
    final = _questions(out / "questions.jsonl")
    report = json.loads((out / "quality_report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    debiased = _questions(out / "stages" / "debiased.jsonl")

    # pairing dropped the questions of classes without images, and said so under a named reason
    dropped = [q for q in debiased if q.qid not in {f.qid for f in final}]
    assert dropped and {q.class_id for q in dropped}.isdisjoint(WITH_IMAGES)
    assert {q.class_id for q in final} <= set(WITH_IMAGES)
    assert manifest["rejections"]["no_images"] == len(dropped) == manifest["pairing"]["no_images"]
    assert "[pair] " in printed and f"{len(dropped)} question(s) dropped" in printed

    # the export: one row per (question, image); its letters are the report's and balanced within one
    items, skipped = load_benchmark(out / "llava" / "benchmark.jsonl")
    assert not skipped and len(items) == len(final)
    by_qid = {q.qid: q for q in final}
    assert {it.question_group for it in items} == set(by_qid)
    for it in items:
        q = by_qid[it.question_group]
        assert list(it.item.options) == q.options and it.item.answer_index == q.answer_index
    exported_letters = Counter("ABCD"[it.item.answer_index] for it in items)
    assert report["letters"] == {x: exported_letters[x] for x in "ABCD"}
    assert max(exported_letters.values()) - min(exported_letters.values()) <= 1
    with open(out / "vlmevalkit" / "benchmark.tsv", newline="", encoding="utf-8") as fh:
        tsv = list(csv.DictReader(fh, delimiter="\t"))
    assert Counter(r["answer"] for r in tsv) == exported_letters
    assert report["n_questions"] == manifest["questions"] == len(final)
    assert report["classes"] == len({q.class_id for q in final})

    # every baseline on that set: learned solvers with intervals, leaks (names and head words), duplicates
    learned = report["learned_baselines"]
    assert learned["n"] == len(final) and set(learned["solvers"]) == {"logistic", "boosting"}
    for v in learned["solvers"].values():
        assert v["ci95"][0] <= v["accuracy"] <= v["ci95"][1]
    assert "learned_blind" in report["targets"]
    lexicon = Lexicon.build(VOCAB.subset(list(CLASSES)))
    assert report["leak_check"] == leak_check(final, lexicon)
    assert report["cross_class_duplicates"] == cross_class_duplicates(final)
    assert report["meta"]["reported_on"].startswith(f"{len(final)} questions paired with images")

    # "targets met" only when every target holds on the export
    targets = {k: v for k, v in report["targets"].items() if k != "passes"}
    assert report["targets"]["passes"] == all(t["pass"] for t in targets.values())
    assert ("targets met" in printed) == report["targets"]["passes"]
    assert f"{len(final)} questions, {report['classes']} classes" in printed


def test_adversarial_filter_runs_by_default_is_recorded_and_fingerprinted(built, tmp_path):
    out, tree, printed = built
    manifest = json.loads((out / "manifest.json").read_text())
    adv = manifest["adversarial"]
    assert manifest["config"]["adversarial"] is True and adv["enabled"] is True
    assert adv["dropped"] > 0 and adv["questions_after"] == adv["questions_before"] - adv["dropped"]
    assert manifest["rejections"]["blind_predictable"] == adv["dropped"]
    assert set(adv["before"]) == set(adv["after"]) == {"logistic", "boosting"}
    assert max(adv["before"].values()) > adv["target"] and adv["target_met"]
    assert all(acc <= adv["target"] for acc in adv["after"].values())
    stage = json.loads((out / "stages" / "debiased.done.json").read_text())
    assert stage["info"]["adversarial"] == adv
    line = next(x for x in printed.splitlines() if x.startswith("[debias]"))
    assert "learned blind solvers on held-out classes: boosting" in line and " → " in line
    assert f"{adv['dropped']} of {adv['questions_before']} dropped" in line

    copy = tmp_path / "bench"
    shutil.copytree(out, copy)
    # the same command again: every stage reused, the same bytes
    before = {p: (copy / p).read_bytes() for p in ("questions.jsonl", "llava/benchmark.jsonl",
                                                   "quality_report.json", "audit/audit.html")}
    rc, again = _cli(_args(copy, tree))
    assert rc == 0 and json.loads((copy / "manifest.json").read_text())["reused_stages"] == [
        "generated", "ruled", "debiased"]
    assert [p for p, data in before.items() if (copy / p).read_bytes() != data] == []
    # --no-adversarial is part of the stage's fingerprint: the debias stage runs again, without the filter
    rc, off = _cli(_args(copy, tree, "--no-adversarial"))
    assert rc == 0, off
    skipped = json.loads((copy / "manifest.json").read_text())
    assert skipped["reused_stages"] == ["generated", "ruled"] and skipped["adversarial"] == {"enabled": False}
    assert "blind_predictable" not in skipped["rejections"] and "adversarial filter off" in off
    assert skipped["questions"] > manifest["questions"]


class _Items(HTMLParser):
    """The audit page's items: section ids, and the data URIs of their images."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("class") == "item":
            self.sections.append(a["id"] or "")
        elif tag == "img" and self.sections:
            self.images[self.sections[-1]] = a["src"] or ""


def test_audit_pages_hold_five_exported_questions_with_their_first_image(built):
    out, _, _ = built
    final = _questions(out / "questions.jsonl")
    manifest = json.loads((out / "manifest.json").read_text())
    page = _Items()
    page.feed((out / "audit" / "audit.html").read_text(encoding="utf-8"))
    page.close()
    expected = [q.qid for q in audit_sample(final, 5, SEED)]
    assert page.sections == expected == manifest["audit"]["questions"]
    assert manifest["audit"] | {"questions": []} == {
        "n": 5, "requested": 5, "seed": SEED, "questions": [], "images": True,
        "files": ["audit/audit.md", "audit/audit.html"]}
    first_image = {}
    for row in _jsonl(out / "llava" / "benchmark.jsonl"):
        first_image.setdefault(row["question_key"],
                               (out / "llava" / row["image"]).read_bytes())
    for qid in expected:
        uri = page.images[qid]
        assert uri.startswith("data:image/")
        data = base64.b64decode(uri.split(",", 1)[1])
        assert data == first_image[qid]
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    md = (out / "audit" / "audit.md").read_text(encoding="utf-8")
    assert md.startswith("# Key audit") and all(f"## {i}. {qid}" in md for i, qid in enumerate(expected, 1))


def test_the_card_states_the_key_audit_and_a_human_review(built):
    out, _, _ = built
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["key_check"] == {"problems": len(key_check(_questions(out / "questions.jsonl"))),
                                     "examples": []}
    readme = write_card(out)
    assert check_folder(out / "hf") == []
    body = readme.read_text(encoding="utf-8")
    assert "Automatic key check: 0 problems; 5 questions exported for human review in audit/ (seed 3)." in body
    assert "Human review" not in body
    (out / "audit" / "review.json").write_text(json.dumps({"reviewed": 5, "wrong_keys": 1,
                                                           "notes": "one part question is disputable"}))
    body = write_card(out).read_text(encoding="utf-8")
    assert ("Human review (`audit/review.json`): 5 questions reviewed, 1 wrong key found. Notes: one part "
            "question is disputable.") in body
    (out / "audit" / "review.json").write_text(json.dumps({"reviewed": 2, "wrong_keys": 3}))
    body = write_card(out).read_text(encoding="utf-8")
    assert "Human review" not in body and "audit/review.json needs whole numbers" in body


class KeyWriter:
    """A chat server "LLM" writing one question per class whose distractors include a true statement: an
    ancestor two steps above the class in WordNet ("This object is a kind of what?": cyprinid / fish)."""

    def __init__(self) -> None:
        self.wnid = {e.name: e.class_id for e in VOCAB}

    def __call__(self, req: dict, idx: int):
        user = req["messages"][-1]["content"]
        name = re.search(r"Here is an article about (.+?)(?: \(also|\.\n)", user).group(1)
        kind = re.search(r"It is a kind of ([^.]+)\.", user.split('"""\n')[1]).group(1)
        grand = synset_from_wnid(self.wnid[name]).hypernyms()[0].hypernyms()[0]
        true_distractor = grand.lemma_names()[0].replace("_", " ")
        options = [kind, true_distractor, "sports car", "kitchen utensil"]
        return reply(json.dumps({"questions": [
            {"question": "This object is a kind of what?", "options": options, "answer": 0,
             "reference": f"It is a kind of {kind}."}]}))


def test_key_check_problems_are_counted_with_evidence_and_fail_the_targets(tmp_path):
    out = tmp_path / "bench"
    classes = CLASSES[:6]
    with ChatServer(KeyWriter()) as server:
        rc, printed = _cli(["build", "--out", str(out), "--class-ids", ",".join(classes), "--generator", "llm",
                            "--llm", server.url, "--llm-model", "writer", "--per-class", "1", "--no-progress",
                            "--audit", "3"])
    assert rc == 0, printed
    final = _questions(out / "questions.jsonl")  # without --images the export is questions.jsonl
    problems = key_check(final)
    assert final and len(problems) >= len(final) // 2
    report = json.loads((out / "quality_report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert report["n_questions"] == len(final) and manifest["exports"] == {}
    for block in (report["key_check"], manifest["key_check"]):
        assert block["problems"] == len(problems)
        assert block["examples"] == [{"qid": p.qid, "class_name": p.class_name, "option": p.option,
                                      "evidence": p.evidence} for p in problems[:5]]
    assert all(e["option"] != "sports car" and e["evidence"] for e in manifest["key_check"]["examples"])
    assert report["targets"]["key_check"] == {"value": len(problems), "target": 0, "pass": False}
    assert report["targets"]["passes"] is False and manifest["targets_pass"] is False
    assert f"key check {len(problems)} problem(s); targets NOT met" in printed
    md = (out / "quality_report.md").read_text(encoding="utf-8")
    assert "## Key check (WordNet)" in md and problems[0].evidence.replace("|", "\\|") in md
    assert "| key_check |" in md
    assert manifest["audit"]["images"] is False and (out / "audit" / "audit.html").is_file()


def test_audit_size_is_checked_before_any_work(tmp_path, capsys):
    out = tmp_path / "bench"
    assert run_cli(main, ["build", "--out", str(out), "--max-classes", "2", "--audit", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --audit must be >= 1 (questions to export for review), got 0" and not out.exists()
