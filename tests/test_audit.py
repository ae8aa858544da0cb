"""Label-noise audit (``python -m builders.verify audit``) on a real build of the embedded sample.

Three models' ``label_check`` sidecars are written in the real layout (``BUILD/verify/label_check.<alias>.parquet``,
the pass's own schema plus the verdict columns) with known verdicts: one item two models call the same other class,
one item with two different other classes, one item nobody gets right, one item nobody answered, the rest right.
The gallery is parsed with html.parser; the card is written by ``python -m cards write``.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from builders.imagenet_qa import main as build_main
from builders.verify.__main__ import main as verify_main
from vlm_classdata.errors import run_cli
from vlm_classdata.verification.items import build_vocabulary, load_build
from vlm_classdata.verification.passes import PassSettings, make_pass

REPO = Path(__file__).resolve().parents[1]
MODELS = ("m1", "m2", "m3")
TIGER_CAT = "n02123159"  # another ImageNet class (not in the sample)
PERSIAN = "n02123394"
SCRIPT = "<script>alert('x')</script> a tabby"


def verdict_rows(items) -> dict[str, list[dict]]:
    """Per model, one label_check row per item with the scenario's reply/verdict."""
    agree, split, wrong, unanswered = (it.sample_id for it in items[:4])
    rows: dict[str, list[dict]] = {m: [] for m in MODELS}
    for it in items:
        plan = {
            agree: [("tiger cat", "other_class", TIGER_CAT), ("a tiger cat", "other_class", TIGER_CAT),
                    (SCRIPT, "none", None)],
            split: [("tiger cat", "other_class", TIGER_CAT), ("persian cat", "other_class", PERSIAN),
                    (it.class_name, "exact", None)],
            wrong: [("I can't tell", "refusal", None), ("blob", "none", None), None],
            unanswered: [None, None, None],
        }.get(it.sample_id, [(it.class_name, "exact", None)] * 3)
        for model, vote in zip(MODELS, plan, strict=True):
            row = {"sample_id": it.sample_id, "split": it.split, "pass": "label_check", "model": model,
                   "prompt_sha": "0" * 16, "class_id": it.class_id, "label": it.class_name}
            if vote is None:
                row.update(status="error", error="unreadable_image")
            else:
                reply, verdict, cid = vote
                row.update(status="ok", reply=reply, verdict=verdict, verdict_class_id=cid,
                           correct=verdict == "exact", match_how="exact" if verdict == "exact" else "none")
            rows[model].append(row)
    return rows


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """The embedded sample (eval_open + hf) with three models' label_check sidecars in BUILD/verify."""
    out = tmp_path_factory.mktemp("audit") / "build"
    assert build_main(["--out", str(out), "--outputs", "eval_open,hf", "--quiet"]) == 0
    vocab = build_vocabulary(out)
    items = load_build(out, "eval_open", vocab=vocab).items
    schema = {**make_pass("label_check", PassSettings(), vocab).schema(), "verdict": pl.String,
              "verdict_steps": pl.Int64, "verdict_class_id": pl.String, "verdict_synset": pl.String}
    (out / "verify").mkdir()
    for model, rows in verdict_rows(items).items():
        pl.DataFrame(rows, schema=schema).write_parquet(out / "verify" / f"label_check.{model}.parquet")
    return out


class Gallery(HTMLParser):
    """Items (data-sample-id), their image sources, reply cells, and every start tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[str] = []
        self.images: dict[str, str] = {}
        self.replies: list[str] = []
        self.tags: list[str] = []
        self._in_reply = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if "data-sample-id" in a:
            self.items.append(a["data-sample-id"] or "")
        if tag == "img":
            self.images[self.items[-1]] = a["src"] or ""
        self._in_reply = tag == "td" and a.get("class") == "reply"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_reply = False

    def handle_data(self, data: str) -> None:
        if self._in_reply:
            self.replies.append(data)


def audit(build: Path, *args: str) -> int:
    return run_cli(verify_main, ["audit", "--build", str(build), *args])


def test_default_rule_flags_the_item_two_models_call_the_same_other_class(build, tmp_path, capsys):
    ids = [it.sample_id for it in load_build(build, "eval_open").items]
    assert audit(build, "--out", str(tmp_path)) == 0
    assert "checked 29 items (m1, m2, m3); flagged 1 (agree_other_class:2 1)" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "relabel_suggestions.jsonl").read_text().splitlines()]
    assert rows == [{
        "sample_id": ids[0], "class_id": "n02123045", "label": "tabby cat", "suggested_class_ids": [TIGER_CAT],
        "rules": ["agree_other_class:2"],
        "evidence": [{"model": "m1", "reply": "tiger cat", "verdict": "other_class", "verdict_class_id": TIGER_CAT},
                     {"model": "m2", "reply": "a tiger cat", "verdict": "other_class",
                      "verdict_class_id": TIGER_CAT},
                     {"model": "m3", "reply": SCRIPT, "verdict": "none", "verdict_class_id": None}]}]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["items_checked"], summary["flagged"], summary["resolved"]) == (29, 1, None)


def test_gallery_shows_every_flagged_item_with_its_image_and_escaped_replies(build, tmp_path):
    items = load_build(build, "eval_open").items
    assert audit(build, "--out", str(tmp_path), "--rule", "agree_other_class:2", "--rule", "any_other_class",
                 "--rule", "all_wrong") == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["flagged_by_rule"] == {"agree_other_class:2": 1, "any_other_class": 2, "all_wrong": 2}
    assert summary["flagged"] == 3
    page = Gallery()
    page.feed((tmp_path / "gallery.html").read_text(encoding="utf-8"))
    assert page.items == [it.sample_id for it in items[:3]]
    for sid in page.items:
        head, data = page.images[sid].split(",", 1)
        assert head == "data:image/jpeg;base64"
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.load()
            assert max(im.size) <= 256
    assert "script" not in page.tags and SCRIPT in page.replies  # shown as text, never run
    assert "I can't tell" in page.replies
    rows = [json.loads(line) for line in (tmp_path / "relabel_suggestions.jsonl").read_text().splitlines()]
    assert rows[1]["suggested_class_ids"] == sorted([TIGER_CAT, PERSIAN]) and rows[1]["rules"] == ["any_other_class"]
    assert rows[2]["suggested_class_ids"] == [] and rows[2]["rules"] == ["all_wrong"]


def test_decisions_are_counted_and_the_card_shows_the_counts(build, tmp_path):
    items = load_build(build, "eval_open").items
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text("\n".join(json.dumps(d) for d in [
        {"sample_id": items[0].sample_id, "decision": "relabel", "class_id": TIGER_CAT},
        {"sample_id": items[2].sample_id, "decision": "drop"},
        {"sample_id": items[1].sample_id, "decision": "keep"},
        {"sample_id": items[9].sample_id, "decision": "keep"}]) + "\n")
    assert audit(build, "--rule", "any_other_class", "--rule", "all_wrong", "--decisions", str(decisions)) == 0
    summary = json.loads((build / "verify" / "audit" / "summary.json").read_text())
    assert summary["resolved"] == {"items": 3, "keep": 1, "relabel": 1, "drop": 1, "unflagged": 1}
    done = subprocess.run([sys.executable, "-m", "cards", "write", str(build)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    card = " ".join((build / "hf" / "README.md").read_text(encoding="utf-8").split())
    assert ("**3 items flagged** of 29 checked, **3 resolved** (keep 1, relabel 1, drop 1)" in card), card


@pytest.mark.parametrize(("args", "message"), [
    (["--rule", "agree_other_class:0"], "N must be at least 1"),
    (["--rule", "all_wrong:3"], "only agree_other_class takes a number"),
    (["--rule", "most_wrong"], "use agree_other_class[:N], any_other_class or all_wrong"),
    (["--decisions", "{bad}"], "decision 'maybe' is not one of keep, relabel, drop"),
    (["--decisions", "{unknown_class}"], "relabel needs the class_id of a class of the vocabulary"),
    (["--verify-dir", "{no_verdicts}"], "has no 'verdict' column"),
])
def test_mistakes_are_one_line_exit_2_before_any_file_is_written(build, tmp_path, capsys, args, message):
    (tmp_path / "bad.jsonl").write_text('{"sample_id": "x", "decision": "maybe"}\n')
    (tmp_path / "unknown_class.jsonl").write_text('{"sample_id": "x", "decision": "relabel", "class_id": "n0"}\n')
    old = tmp_path / "no_verdicts"
    old.mkdir()
    pl.read_parquet(build / "verify" / "label_check.m1.parquet").drop("verdict").write_parquet(
        old / "label_check.m1.parquet")
    args = [a.format(bad=tmp_path / "bad.jsonl", unknown_class=tmp_path / "unknown_class.jsonl", no_verdicts=old)
            for a in args]
    out = tmp_path / "out"
    assert audit(build, "--out", str(out), *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
