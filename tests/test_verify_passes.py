"""Verification passes on tiny models loaded through the real path (save_pretrained → from_pretrained offline).

Scripted tiny LLaVAs (vlm_classdata.vlm.tiny.make_scripted_llava) always give one known reply, so what each pass concludes can be
checked item by item; a random tiny LLaVA gives varied replies for the resume / Ray / shard equalities.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from torch_threads import ONE_THREAD_ENV, one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.synthetic import DEFAULT_WNIDS, jpeg_bytes
from builders.verify.__main__ import main as verify_main
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.verification.items import Item, build_vocabulary, load_build, load_items
from vlm_classdata.verification.jobs import PassJob, RunOptions
from vlm_classdata.verification.passes import PassSettings, load_image, make_pass
from vlm_classdata.verification.runner import run_pass
from vlm_classdata.verification.workers import ModelCache
from vlm_classdata.vlm.tiny import make_scripted_llava, make_tiny_llava

REPO = Path(__file__).resolve().parents[1]
TENCH = "n01440764"


@pytest.fixture(scope="module")
def built(imagenet_tree, tmp_path_factory):
    """A build of the 6-class tree: eval_open + mcq (+ llava, hf for filtering), 30 samples."""
    root, _ = imagenet_tree
    out = tmp_path_factory.mktemp("vbuild") / "out"
    assert build_main(["--root", str(root), "--out", str(out), "--outputs", "llava,hf,eval_open,mcq",
                       "--quiet", "--shard-size", "8"]) == 0
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return {
        "random": make_tiny_llava(str(base / "random"), seed=0),
        "says_A": make_scripted_llava(str(base / "says_A"), "A"),
        "says_tench": make_scripted_llava(str(base / "says_tench"), "tench"),
    }


_HELD: dict[str, ModelCache] = {}  # one load per model for the whole module (the CLI holds one the same way)


def job(pass_name: str, model: str, vocab, alias: str | None = None, **settings) -> PassJob:
    return PassJob(pass_name, model, alias or Path(model).name, vocab.to_json(),
                   PassSettings(**{"max_new_tokens": 8, **settings}))


def run(items, j, out, **opts) -> tuple[dict, pl.DataFrame]:
    held = _HELD.setdefault(j.model, ModelCache())
    summary = run_pass(items, j, out, RunOptions(progress=False, **{"chunk_size": 4, **opts}), held)
    return summary, pl.read_parquet(Path(out) / f"{j.pass_name}.{j.alias}.parquet")


def test_build_carries_its_vocabulary(built):
    vocab = build_vocabulary(built)
    assert len(vocab) == 1000 and vocab[TENCH].name == "tench"
    items = load_build(built, "eval_open").items
    assert len(items) == 30 and all(Path(it.image).is_file() for it in items)
    assert {it.class_id for it in items} == set(DEFAULT_WNIDS)


def test_label_check_and_rank_judge_a_model_that_always_says_tench(built, models, tmp_path):
    vocab = build_vocabulary(built).subset(DEFAULT_WNIDS)
    items = load_build(built, "eval_open", vocab=vocab).items
    summary, frame = run(items, job("label_check", models["says_tench"], vocab), tmp_path)
    assert list(frame.columns) == list(make_pass("label_check", PassSettings(), vocab).schema())
    assert frame["sample_id"].to_list() == [it.sample_id for it in items]
    assert set(frame["reply"]) == {"tench"} and set(frame["status"]) == {"ok"}
    is_tench = [it.class_id == TENCH for it in items]
    assert frame["correct"].to_list() == is_tench
    assert set(frame.filter(pl.col("correct"))["match_how"]) == {"exact"}
    # other classes: the reply names another class
    assert set(frame.filter(~pl.col("correct"))["match_how"]) == {"other_class"}
    assert summary["accuracy"] == pytest.approx(sum(is_tench) / len(items), abs=1e-6)

    summary, ranks = run(items, job("rank", models["says_tench"], vocab), tmp_path)
    assert ranks["n_candidates"].to_list() == [6] * len(items)
    assert set(ranks["top1_class_id"]) == {TENCH}
    assert ranks["correct"].to_list() == is_tench
    assert all((r == 1) == t for r, t in zip(ranks["rank"], is_tench, strict=True))
    assert all(lp > -0.01 for lp, t in zip(ranks["logprob_sum"], is_tench, strict=True) if t)
    assert summary["top5_accuracy"] == pytest.approx(float(ranks["in_top5"].mean()), abs=1e-6)


def test_mcq_and_blind_judge_a_model_that_always_says_a(built, models, tmp_path):
    vocab = build_vocabulary(built)
    items = load_build(built, "mcq").items
    assert all(len(it.options) == 4 for it in items)
    for name in ("mcq", "blind"):
        _, frame = run(items, job(name, models["says_A"], vocab), tmp_path)
        assert set(frame["reply"]) == {"A"} and set(frame["parse_how"]) == {"letter"}
        assert set(frame["pred_index"]) == {0}
        assert frame["correct"].to_list() == [it.answer_index == 0 for it in items]
        assert frame["answer_index"].to_list() == [it.answer_index for it in items]
    # the blind prompt has no image tokens: a pass over items without images still runs
    _, frame = run([Item("x", "s", None, "Q?\nA. a\nB. b", options=("a", "b"), answer_index=0)],
                   job("blind", models["says_A"], vocab), tmp_path / "noimg")
    assert frame["status"].to_list() == ["ok"] and frame["correct"].to_list() == [True]


def test_released_imagewikiqa_rows_are_scored(models, tmp_path, released_imagewikiqa):
    """The released ImageWikiQA format (image, text, label, wiki, classname) goes through the same parser."""
    rows = [json.loads(x) for x in released_imagewikiqa.read_text().splitlines()[:24]]
    path = tmp_path / "iwqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    vocab = build_vocabulary_for_release()
    items = load_items(path, image_root=tmp_path, vocab=vocab).items
    assert len(items) == 24 and all(len(it.options) == 4 for it in items)
    _, blind = run(items, job("blind", models["says_A"], vocab), tmp_path / "v")
    assert blind["correct"].to_list() == [r["label"] == "A" for r in rows]
    # images are not shipped with the release: the image pass records them as errors, never crashes
    _, mcq = run(items, job("mcq", models["says_A"], vocab), tmp_path / "v")
    assert set(mcq["error"]) == {"missing_image"} and mcq["correct"].null_count() == 24


def build_vocabulary_for_release():
    from vlm_classdata.vocabulary import ClassVocabulary

    return ClassVocabulary.bundled("imagenet1k")


def test_bad_samples_become_error_rows(built, models, tmp_path):
    vocab = build_vocabulary(built)
    good = load_build(built, "mcq").items[:3]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad = [
        Item("missing", "s", str(tmp_path / "nope.jpg"), good[0].question, options=good[0].options, answer_index=0),
        Item("broken", "s", str(tmp_path / "broken.jpg"), good[0].question, options=good[0].options, answer_index=0),
        Item("noimage", "s", None, good[0].question, options=good[0].options, answer_index=0),
        Item("nooptions", "s", good[0].image, "What is it?"),
        Item("long", "s", good[1].image, "word " * 3000 + good[1].question, options=good[1].options,
             answer_index=1),
    ]
    summary, frame = run(good + bad, job("mcq", models["says_A"], vocab, max_prompt_tokens=2000), tmp_path)
    errors = dict(zip(frame["sample_id"], frame["error"], strict=True))
    assert [errors[it.sample_id] for it in good] == [None] * 3
    assert {k: errors[k] for k in ("missing", "broken", "noimage", "nooptions", "long")} == {
        "missing": "missing_image", "broken": "unreadable_image", "noimage": "no_image",
        "nooptions": "no_options", "long": "prompt_too_long"}
    assert summary["ok"] == 3 and sum(summary["errors"].values()) == 5
    assert frame.filter(pl.col("status") == "error")["correct"].null_count() == 5


def test_cache_key_is_model_prompt_and_sample(built, models, tmp_path):
    vocab = build_vocabulary(built)
    items = load_build(built, "mcq").items[:6]
    first, frame = run(items, job("mcq", models["random"], vocab, alias="r"), tmp_path)
    assert (first["answered_now"], first["cached"]) == (6, 0)
    again, same = run(items, job("mcq", models["random"], vocab, alias="r"), tmp_path)
    assert (again["answered_now"], again["cached"]) == (0, 6)
    assert_frame_equal(frame, same)
    # a different prompt setting is a different key: everything is asked again
    longer, _ = run(items, job("mcq", models["random"], vocab, alias="r", max_new_tokens=3), tmp_path)
    assert longer["answered_now"] == 6
    # a new item is the only one asked
    extra = Item("extra", "val", items[0].image, items[0].question, options=items[0].options, answer_index=0)
    grown, frame2 = run([*items, extra], job("mcq", models["random"], vocab, alias="r"), tmp_path)
    assert (grown["answered_now"], grown["cached"]) == (1, 6) and frame2.height == 7
    with pytest.raises(UserError, match="alias 'r' was used for model"):
        run(items, job("mcq", models["says_A"], vocab, alias="r"), tmp_path)


def test_shards_then_assembly_equal_one_run(built, models, tmp_path):
    vocab = build_vocabulary(built)
    items = load_build(built, "mcq").items[:14]
    _, whole = run(items, job("mcq", models["random"], vocab, alias="r"), tmp_path / "one")
    held = _HELD.setdefault(models["random"], ModelCache())
    part = run_pass(items, job("mcq", models["random"], vocab, alias="r"), tmp_path / "two",
                    RunOptions(chunk_size=4, shard=(0, 2), progress=False), held)
    assert part["complete"] is False and part["answered_now"] == 8 and part["remaining"] == 6
    last = run_pass(items, job("mcq", models["random"], vocab, alias="r"), tmp_path / "two",
                    RunOptions(chunk_size=4, shard=(1, 2), progress=False), held)
    assert last["complete"] is True and last["answered_now"] == 6
    assert_frame_equal(pl.read_parquet(tmp_path / "two" / "mcq.r.parquet"), whole)
    assert len(set(whole["reply"])) > 3  # the random model's replies vary: the equality means something


def test_killed_cli_run_resumes_to_the_same_sidecar(built, models, tmp_path):
    """A real process killed (SIGKILL) after its third finished chunk resumes to the sidecar of one whole run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **ONE_THREAD_ENV}
    args = ["run", "--build", str(built), "--passes", "mcq", "--model", models["random"], "--alias", "r",
            "--chunk-size", "2", "--limit", "16", "--max-new-tokens", "24", "--quiet"]
    assert run_cli(verify_main, [*args, "--out", str(tmp_path / "ref")]) == 0  # the reference, in-process
    out = tmp_path / "killed"
    cli = [sys.executable, "-m", "builders.verify", *args, "--out", str(out)]
    proc = subprocess.Popen(cli, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = out / ".cache" / "mcq.r"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(markers.glob("part-*.done.json"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(markers.glob("part-*.done.json")))  # chunks finished: published and marked done
    assert 3 <= done_before < 8 and not (out / "mcq.r.parquet").exists()
    assert run_cli(verify_main, [*args, "--out", str(out)]) == 0  # the resumed run needs no process of its own
    log = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert log[-1]["cached"] == 2 * done_before and log[-1]["answered_now"] == 16 - 2 * done_before
    got = pl.read_parquet(out / "mcq.r.parquet")
    assert_frame_equal(got, pl.read_parquet(tmp_path / "ref" / "mcq.r.parquet"))
    assert got["sample_id"].n_unique() == got.height == 16
    assert (out / "mcq.r.json").read_bytes() == (tmp_path / "ref" / "mcq.r.json").read_bytes()


def test_ray_actor_pool_matches_one_process(built, models, tmp_path):
    """Two Ray actors answer the chunks (out of order) and the sidecar equals the one-process sidecar.

    One Ray run covers the whole Ray path, which does not depend on the pass: multiple-choice items (every Item
    field, options included) travel to the actors as JSON, and rank rows (the richest columns: floats, ints, a
    list) travel back and are assembled in input order."""
    pytest.importorskip("ray")
    vocab = build_vocabulary(built).subset(DEFAULT_WNIDS)
    items = load_build(built, "mcq", vocab=vocab).items[:12]
    assert all(it.options and it.class_id for it in items)
    _, local = run(items, job("rank", models["random"], vocab, alias="r"), tmp_path / "local")
    _, ray_frame = run(items, job("rank", models["random"], vocab, alias="r"), tmp_path / "ray",
                       executor="ray", num_workers=2)
    assert_frame_equal(ray_frame, local, check_exact=False, rtol=1e-5, atol=1e-5)
    assert len(set(local["rank"])) > 1 and len({tuple(t) for t in local["top5"]}) > 1


def test_cli_run_filter_summary(built, models, tmp_path, capsys):
    """The three commands end to end (in-process through run_cli, as ``python -m builders.verify`` runs them)."""

    def cli(*args: str) -> tuple[int, str, str]:
        code = run_cli(verify_main, list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out_text, err = cli("run", "--build", str(built), "--passes", "blind,mcq", "--model", models["says_A"],
                              "--quiet", "--max-new-tokens", "6")
    assert code == 0, err
    assert "blind[says_A]: 30 items, 30 ok" in out_text and "mcq[says_A]: 30 items, 30 ok" in out_text
    code, out_text, err = cli("run", "--build", str(built), "--passes", "label_check", "--model",
                              models["says_tench"], "--quiet")
    assert code == 0, err
    assert "label_check[says_tench]: 30 items, 30 ok, accuracy 0.167" in out_text
    items = load_build(built, "mcq").items
    answer_a = {it.sample_id for it in items if it.answer_index == 0}
    tench = {it.sample_id for it in items if it.class_id == TENCH}
    out = tmp_path / "clean"
    code, _, err = cli("filter", "--build", str(built), "--rule", "drop:blind", "--rule", "keep:label_check>=1",
                       "--out", str(out))
    assert code == 0, err
    report = json.loads((out / "filter_report.json").read_text())
    kept = tench - answer_a
    assert report["kept"] == len(kept) and report["input"] == 30
    assert [x["dropped"] for x in report["rules"]] == [len(answer_a), 30 - len(answer_a) - len(kept)]
    llava = json.loads((out / "llava" / "train.json").read_text())
    assert {row["id"] for row in llava} == {k for k in kept if k in {x.sample_id for x in items
                                                                      if x.split == "train"}}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filtered"]["kept"] == len(kept) and sum(manifest["outputs"]["mcq"]["counts"].values()) == len(kept)
    # the filtered copy is a build: it can be verified again
    assert len(load_build(out, "mcq").items) == len(kept)
    code, out_text, _ = cli("summary", "--build", str(built))
    assert code == 0 and "label_check  says_tench" in out_text
    # user mistakes: one line, exit 2
    for bad in (["run", "--build", str(built), "--model", str(tmp_path / "none")],
                ["run", "--build", str(built), "--model", models["says_A"], "--passes", "nope"],
                ["filter", "--build", str(built), "--rule", "drop:rank", "--out", str(tmp_path / "x")],
                ["run", "--input", str(tmp_path / "missing.jsonl"), "--model", models["says_A"], "--passes", "mcq"]):
        code, _, err = cli(*bad)
        assert code == 2 and err.strip().count("\n") == 0 and err.startswith("error: "), err


def test_jpeg_helper_images_are_read(tmp_path):
    """load_image reads what builders write (sanity for the error paths above)."""
    import random

    path = tmp_path / "ok.jpg"
    path.write_bytes(jpeg_bytes(random.Random(0)))
    image, reason = load_image(str(path))
    assert reason is None and image.mode == "RGB" and image.size == (48, 40)
