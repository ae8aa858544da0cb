"""Run every command on the embedded sample and fingerprint what it writes (the architecture-safety net).

``snapshot(run_all(out))`` maps each written file to a digest of its *content*: text with the run's own
folder, times and library versions masked; parquet by schema and rows; tar archives member by member;
images by decoded pixels. So a library upgrade that re-encodes the same content does not fail the check,
while any change in what a command writes does. ``python tests/golden_outputs.py --write`` records the
fixture (``tests/golden/outputs.json``); ``tests/test_golden_outputs.py`` compares against it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from builders.imagenet_qa import main as build_main
from builders.sample import SAMPLE_ROOT, sample_wnids
from builders.verify.__main__ import main as verify_main
from cards.__main__ import main as cards_main
from corpora_stats.__main__ import main as corpora_main
from imagewikiqa.__main__ import main as iwqa_main
from vlm_classdata.errors import run_cli
from vlm_classdata.vlm.tiny import make_scripted_llava
from vlm_classdata.vocabulary import ClassVocabulary

FIXTURE = Path(__file__).parent / "golden" / "outputs.json"
REPO = Path(__file__).resolve().parents[1]
# Keys whose values differ from run to run (clocks, hosts, versions, durations).
VOLATILE_KEYS = re.compile(
    r'"(created|created_at|started|started_at|finished|finished_at|ended_at|time|timestamp|date|elapsed|'
    r'elapsed_s|seconds|wall_s|cpu_s|duration|duration_s|rate|host|hostname|pid|python|platform|versions?|'
    r'tool_version|[a-z_]*_version|[a-z_]*_per_s|mtime|mtime_ns|run_id|argv)": ("[^"]*"|[-0-9.eE+]+|null|\{[^{}]*\}|\[[^\[\]]*\])')
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
SKIP = {".vlm-classdata", ".vlm-classdata.lock"}
INPUTS = ("models/", "inputs/")  # made by run_all itself, not by a command
INTERNAL = {".state", ".cache", "stages"}  # resume state: keyed on source mtimes, not an output


def _text(data: bytes, out: Path) -> str:
    text = data.decode("utf-8")
    text = text.replace(str(out), "<OUT>").replace(str(REPO), "<REPO>")
    text = VOLATILE_KEYS.sub(lambda m: f'"{m.group(1)}": "<v>"', text)
    return ISO_TIME.sub("<time>", text)


def _digest_bytes(name: str, data: bytes, out: Path) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in {".json", ".jsonl", ".md", ".html", ".txt", ".csv", ".tsv", ".cls", ".yaml", ".log", ""}:
        with contextlib.suppress(UnicodeDecodeError):
            data = _text(data, out).encode()
    elif suffix in {".jpg", ".jpeg", ".png", ".webp"}:
        with Image.open(io.BytesIO(data)) as im:
            data = f"{im.size}{im.mode}".encode() + im.tobytes()
    elif suffix == ".parquet":
        table = pq.read_table(io.BytesIO(data))
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
        rows = json.dumps(table.to_pylist(), sort_keys=True, default=lambda b: hashlib.sha256(b).hexdigest())
        data = (str(table.schema.remove_metadata()) + json.dumps(meta, sort_keys=True) + _text(rows.encode(), out)).encode()
    elif suffix == ".tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            parts = [f"{m.name}:{_digest_bytes(m.name, tar.extractfile(m).read(), out)}"
                     for m in tar.getmembers() if m.isfile()]
        data = "\n".join(parts).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def snapshot(out: Path) -> dict[str, str]:
    """Relative path → content digest for every file under ``out`` (run markers and locks left out)."""
    return {p.relative_to(out).as_posix(): _digest_bytes(p.name, p.read_bytes(), out)
            for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in SKIP and not p.relative_to(out).as_posix().startswith(INPUTS)
            and not INTERNAL & set(p.relative_to(out).parts)}


def _ok(main, argv: list[str]) -> None:
    code = run_cli(main, argv)
    if code != 0:
        raise AssertionError(f"{argv[:2]} exited {code}")


def run_all(out: Path) -> Path:
    """Build, verify, filter, card, count, report and make a small ImageWikiQA benchmark under ``out``."""
    argv, sys.argv = sys.argv, ["golden_outputs"]  # outputs record how a run was started
    try:
        return _run_all(out)
    finally:
        sys.argv = argv


def _run_all(out: Path) -> Path:
    build = out / "build"
    _ok(build_main, ["--out", str(build), "--outputs", "llava,hf,wds,eval_open,open_hf,mcq,mcq_hf,vlmevalkit",
                     "--quiet"])
    model = make_scripted_llava(str(out / "models" / "scripted"), reply="A")
    _ok(verify_main, ["run", "--build", str(build), "--passes", "label_check,mcq,blind,rank", "--model", model,
                      "--alias", "s", "--device", "cpu", "--max-new-tokens", "4", "--quiet"])
    _ok(verify_main, ["summary", "--build", str(build)])
    _ok(verify_main, ["filter", "--build", str(build), "--rule", "drop:blind", "--out", str(out / "filtered")])
    # predictions for the accuracy report: label by id, replies by name, synonym, id, wrong class, junk
    wnids = sample_wnids()
    preds = out / "inputs" / "predictions.jsonl"
    preds.parent.mkdir(parents=True)
    rows = []
    vocab = ClassVocabulary.bundled("imagenet1k")
    for i, wnid in enumerate(wnids):
        name = vocab.names[vocab.ids.index(wnid)]
        rows += [{"label": wnid, "pred": name}, {"label": wnid, "pred": f"It is a {name.lower()}."},
                 {"label": wnid, "pred": wnids[(i + 1) % len(wnids)]}, {"label": wnid, "pred": "no idea"}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    freq = out / "freq"
    _ok(corpora_main, ["demo", "--out", str(freq)])
    _ok(corpora_main, ["report", "--counts", str(freq), "--accuracy", str(preds), "--out", str(out / "freq_acc")])
    _ok(cards_main, ["write", str(build), "--corpora", str(freq)])
    bench = out / "iwqa"
    _ok(iwqa_main, ["build", "--out", str(bench), "--class-ids", ",".join(wnids), "--no-progress",
                    "--images", str(SAMPLE_ROOT), "--split", "val", "--images-per-question", "1"])
    jsonl = bench / "questions.jsonl"
    _ok(iwqa_main, ["report", str(build / "mcq" / "validation.jsonl"), "--out", str(out / "mcq_report")])
    answers = out / "inputs" / "iwqa_replies.jsonl"
    n = sum(1 for _ in jsonl.open())
    answers.write_text("".join(json.dumps({"reply": "ABCD"[i % 4]}) + "\n" for i in range(n)))
    _ok(iwqa_main, ["evaluate", str(answers), "--questions", str(jsonl), "--out", str(out / "iwqa_eval.json")])
    _ok(cards_main, ["write", str(bench)])
    _ok(cards_main, ["write", str(out / "filtered")])
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        got = snapshot(run_all(Path(tmp) / "o"))
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    if "--write" in sys.argv:
        FIXTURE.write_text(text)
        print(f"wrote {len(got)} digests to {FIXTURE}")
    else:
        print(text, end="")
