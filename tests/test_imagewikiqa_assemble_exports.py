"""Pairing ImageWikiQA questions with images (imagewikiqa.assemble) and the three exports (imagewikiqa.exports).

A real ImageNet-layout tree (builders.synthetic, real wnids, flat val) read through open_source("imagenet"):
tench has 3 good val images, goldfish 1 good + a truncated and a zero-byte one, great white shark only
non-images, Chihuahua (not in the tree) none, Japanese spaniel only CMYK JPEGs. Exports are read back with
the real consumers: imagewikiqa.evaluate.load_benchmark, datasets.load_dataset, pandas.read_csv.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from builders.sources.base import Source
from builders.sources.registry import open_source
from builders.synthetic import jpeg_bytes, make_imagenet_tree
from imagewikiqa.assemble import PairedItem, pair_images, shift_options
from imagewikiqa.evaluate import Predictions, evaluate, load_benchmark
from imagewikiqa.exports import (
    TSV_CIRCULAR_OFFSET,
    export_all,
    write_hf_parquet,
    write_llava_jsonl,
    write_vlmevalkit_tsv,
)
from imagewikiqa.records import Question
from vlm_classdata.errors import UserError
from vlm_classdata.images import inspect_image

TENCH, GOLDFISH, SHARK, CHIHUAHUA, SPANIEL = "n01440764", "n01443537", "n01484850", "n02085620", "n02085782"
NAMES = {TENCH: "tench", GOLDFISH: "goldfish", SHARK: "great white shark", CHIHUAHUA: "Chihuahua",
         SPANIEL: "Japanese spaniel"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The tree and ``image key -> wnid`` of every val file."""
    import random

    root = tmp_path_factory.mktemp("iwqa_tree")
    truth = make_imagenet_tree(root, (TENCH, GOLDFISH, SHARK, SPANIEL), train_per_class=0, val_per_class=3)
    by_class: dict[str, list[Path]] = {}
    for rel, wnid in sorted(truth["val"].items()):
        by_class.setdefault(wnid, []).append(root / rel)
    gold = by_class[GOLDFISH]
    gold[0].write_bytes(gold[0].read_bytes()[:200])  # truncated
    gold[1].write_bytes(b"")  # zero bytes
    for path in by_class[SHARK]:
        path.write_bytes(b"this is not an image\n" * 10)
    rng = random.Random(7)
    for path in by_class[SPANIEL]:
        path.write_bytes(jpeg_bytes(rng, (40, 32), mode="CMYK"))
    keys = {Path(rel).stem: wnid for rel, wnid in truth["val"].items()}
    return root, keys


def make_question(class_id: str, n: int, answer_index: int) -> Question:
    name = NAMES[class_id]
    options = [f"option {c} of {class_id}-{n}" for c in "wxyz"]
    return Question(qid=f"{class_id}-hand-fact-{n}", class_id=class_id, class_name=name,
                    question=f"Which fact number {n} is true of this object?", options=options,
                    answer_index=answer_index, reference=f"A sentence about {name} ({n}).",
                    source=f"wordnet:{class_id}", generator="hand", kind="fact")


QUESTIONS = [make_question(TENCH, 0, 0), make_question(TENCH, 1, 1), make_question(TENCH, 2, 3),
             make_question(GOLDFISH, 0, 2), make_question(CHIHUAHUA, 0, 1), make_question(SHARK, 0, 0),
             make_question(SPANIEL, 0, 3)]


class ReversedScan(Source):
    """The same source with its scan order reversed (pairing must not depend on it)."""

    kind = "reversed"

    def __init__(self, inner: Source) -> None:
        super().__init__(inner.vocabulary)
        self.inner = inner

    def splits(self) -> list[str]:
        return self.inner.splits()

    def scan(self, split: str) -> Iterator:
        return iter(list(self.inner.scan(split))[::-1])

    def read(self, refs):
        return self.inner.read(refs)


@pytest.fixture(scope="module")
def source(tree) -> Source:
    return open_source("imagenet", str(tree[0]))


@pytest.fixture(scope="module")
def paired(source) -> tuple[list[PairedItem], object]:
    return pair_images(QUESTIONS, source, split="val", per_question=2, seed=3)


@pytest.fixture(scope="module")
def paired4(source) -> tuple[list[PairedItem], object]:
    return pair_images(QUESTIONS, source, split="val", per_question=2, seed=3, permutations=4)


def signature(items: list[PairedItem]) -> list[tuple]:
    return [(it.question.qid, it.image_key, it.image_bytes, it.image_ext, it.permutation, tuple(it.options),
             it.answer_index) for it in items]


# ----- pairing -------------------------------------------------------------------------------------------
def test_pairing_draws_distinct_checked_images_and_counts_the_rest(tree, paired) -> None:
    root, keys = tree
    items, counts = paired
    assert dict(counts) == {"truncated": 1, "zero_byte": 1, "not_an_image": 3, "converted_mode_CMYK": 2,
                            "too_few_images": 1, "no_images": 2}
    by_q: dict[str, list[PairedItem]] = {}
    for it in items:
        by_q.setdefault(it.question.qid, []).append(it)
    # tench: 2 of its 3 images each; goldfish: its one good image; shark/Chihuahua dropped; spaniel converted
    assert {q: len(v) for q, v in by_q.items()} == {
        f"{TENCH}-hand-fact-0": 2, f"{TENCH}-hand-fact-1": 2, f"{TENCH}-hand-fact-2": 2,
        f"{GOLDFISH}-hand-fact-0": 1, f"{SPANIEL}-hand-fact-0": 2}
    assert [it.question.qid for it in items] == sorted((it.question.qid for it in items),
                                                       key=[q.qid for q in QUESTIONS].index)  # question order
    for qid, rows in by_q.items():
        assert len({r.image_key for r in rows}) == len(rows), qid  # distinct images per question
    tench_keys = {it.image_key for it in items if it.class_id == TENCH}
    assert len(tench_keys) == 3  # three questions spread over the class's three images
    for it in items:
        assert keys[it.image_key] == it.class_id == it.question.class_id
        assert it.permutation == 0 and it.options == it.question.options
        assert it.answer_index == it.question.answer_index
        check = inspect_image(it.image_bytes)
        assert check.skip is None and check.convert is None and it.image_ext == check.ext == "jpg"
        if it.class_id != SPANIEL:  # stored bytes are the file's bytes
            assert it.image_bytes == (root / "val" / f"{it.image_key}.JPEG").read_bytes()
        else:
            assert Image.open(io.BytesIO(it.image_bytes)).mode == "RGB"


def test_pairing_is_deterministic_and_independent_of_scan_order(source, paired) -> None:
    items, counts = paired
    again, again_counts = pair_images(QUESTIONS, source, per_question=2, seed=3)
    assert signature(again) == signature(items) and again_counts == counts
    reversed_items, reversed_counts = pair_images(QUESTIONS, ReversedScan(source), per_question=2, seed=3)
    assert signature(reversed_items) == signature(items) and reversed_counts == counts
    # a question's images depend on its qid and the seed only, not on the other questions
    alone, _ = pair_images([QUESTIONS[1]], source, per_question=2, seed=3)
    assert signature(alone) == [s for s in signature(items) if s[0] == QUESTIONS[1].qid]
    draws = {tuple(it.image_key for it in pair_images(QUESTIONS[:3], source, per_question=2, seed=s)[0])
             for s in range(8)}
    assert len(draws) > 1  # the seed matters


def test_permutations_shift_options_cyclically(paired, paired4) -> None:
    base, _ = paired
    items, counts = paired4
    assert len(items) == 4 * len(base) and counts == paired[1]
    for i, b in enumerate(base):
        rows = items[4 * i:4 * i + 4]
        assert [r.permutation for r in rows] == [0, 1, 2, 3]
        assert {(r.question.qid, r.image_key, r.image_bytes) for r in rows} == {(b.question.qid, b.image_key,
                                                                                 b.image_bytes)}
        assert rows[0].options == b.options and rows[0].answer_index == b.answer_index
        n = len(b.options)
        for k, r in enumerate(rows):
            assert r.answer_index == (b.answer_index + k) % n
            assert r.options[r.answer_index] == b.question.answer
            assert [r.options[(j + k) % n] for j in range(n)] == b.options  # a cyclic shift by k
        assert len({tuple(r.options) for r in rows}) == 4
    assert shift_options(["a", "b", "c", "d"], 3, 1) == (["d", "a", "b", "c"], 0)


def test_pairing_rejects_bad_arguments(source) -> None:
    with pytest.raises(UserError, match="per_question"):
        pair_images(QUESTIONS, source, per_question=0)
    with pytest.raises(UserError, match="permutations 5 exceeds"):
        pair_images(QUESTIONS, source, permutations=5)
    with pytest.raises(UserError, match="no 'test' split"):
        pair_images(QUESTIONS, source, split="test")
    with pytest.raises(UserError, match="occurs twice"):
        pair_images([QUESTIONS[0], QUESTIONS[0]], source)


# ----- exports -------------------------------------------------------------------------------------------
def check_llava(path: Path, items: list[PairedItem]) -> list:
    bench, skipped = load_benchmark(path)
    assert not skipped and len(bench) == len(items)
    for b, it in zip(bench, items, strict=True):
        item = b.item
        assert list(item.options) == it.options and item.answer_index == it.answer_index
        assert item.options[item.answer_index] == it.question.answer
        assert item.label == "ABCD"[it.answer_index] and item.class_id == it.class_id
        assert item.class_name == it.question.class_name and b.question_group == it.question.qid
        assert Path(item.image).read_bytes() == it.image_bytes
        assert item.question == it.question.prompt(options=it.options)
    return bench


def test_export_all_reads_back_in_every_consumer(tmp_path: Path, paired) -> None:
    import pandas as pd
    from datasets import load_dataset

    items, _ = paired
    paths = export_all(items, tmp_path / "out")
    assert set(paths) == {"llava", "hf", "vlmevalkit", "lmms_eval"}
    assert sorted(p.name for p in Path(paths["lmms_eval"]).iterdir()) == ["README.md", "utils.py",
                                                                         "vlmcd_imagewikiqa.yaml"]

    llava = Path(paths["llava"])
    bench = check_llava(llava, items)
    assert [b.item.sample_id for b in bench] == [f"{it.question.qid}-{it.image_key}" for it in items]
    assert all(b.circular_group is None and b.permutation is None for b in bench)
    images = sorted(p.name for p in (llava.parent / "images").iterdir())
    assert images == sorted({f"{it.image_key}.jpg" for it in items})  # each image written once

    ds = load_dataset(paths["hf"], split="test", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == len(items)
    assert sorted(p.name for p in (Path(paths["hf"]) / "data").iterdir()) == ["test-00000-of-00001.parquet"]
    for i, (row, it) in enumerate(zip(ds, items, strict=True)):
        assert isinstance(row["image"], Image.Image) and row["image"].size == Image.open(
            io.BytesIO(it.image_bytes)).size
        assert row["answer"] == it.letter and row["options"][row["answer_index"]] == it.question.answer
        assert row["id"] == f"{it.question.qid}-{it.image_key}" and row["permutation"] == 0 and row["index"] == i
        assert row["class_name"] == it.question.class_name and row["wiki"] == it.question.reference
        assert row["text"] == it.question.prompt(options=it.options) and row["question"] == it.question.question

    tsv = pd.read_csv(paths["vlmevalkit"], sep="\t")
    assert list(tsv.columns[:12]) == ["index", "image", "question", "hint", "A", "B", "C", "D", "answer",
                                      "category", "l2-category", "split"]
    assert tsv["index"].tolist() == list(range(len(items)))
    assert tsv["hint"].isna().all() and set(tsv["split"]) == {"test"}
    for (_, row), it in zip(tsv.iterrows(), items, strict=True):
        assert base64.b64decode(row["image"]) == it.image_bytes
        assert row["answer"] == it.letter and row[row["answer"]] == it.question.answer
        assert [row[c] for c in "ABCD"] == it.options
        assert row["category"] == it.question.class_name and row["question"] == it.question.question


def test_exports_with_permutations_group_circularly(tmp_path: Path, paired4) -> None:
    import pandas as pd
    from datasets import load_dataset

    items, _ = paired4
    llava = write_llava_jsonl(items, tmp_path / "llava")
    bench = check_llava(llava, items)
    assert [b.item.sample_id for b in bench] == [f"{it.question.qid}-{it.image_key}-p{it.permutation}"
                                                 for it in items]
    assert [b.permutation for b in bench] == [it.permutation for it in items]
    groups: dict[str, list] = {}
    for b in bench:
        groups.setdefault(b.circular_group, []).append(b)
    assert len(groups) == len(items) // 4 and all(len(g) == 4 for g in groups.values())
    # perfect replies: every group correct; one wrong row breaks exactly its group
    replies = {b.item.sample_id: f"The answer is {'ABCD'[b.item.answer_index]}." for b in bench}
    report = evaluate(bench, Predictions(replies=replies, n_rows=len(replies)))
    circ = report["circular"]
    assert circ["n_groups"] == len(groups) and circ["correct"] == len(groups) and circ["group_sizes"] == {
        "4": len(groups)}
    wrong = bench[5].item
    replies[wrong.sample_id] = f"{'ABCD'[(wrong.answer_index + 1) % 4]}"
    circ = evaluate(bench, Predictions(replies=replies, n_rows=len(replies)))["circular"]
    assert circ["correct"] == len(groups) - 1 and circ["accuracy_permutation0"] == 1.0

    hf = write_hf_parquet(items, tmp_path / "hf", rows_per_shard=10)
    assert len(list((hf / "data").iterdir())) == -(-len(items) // 10)
    ds = load_dataset(str(hf), split="test", cache_dir=str(tmp_path / "cache"))
    assert ds["permutation"] == [it.permutation for it in items]
    assert ds["answer"] == [it.letter for it in items]

    tsv = pd.read_csv(write_vlmevalkit_tsv(items, tmp_path / "b.tsv"), sep="\t")
    pairs = len(items) // 4
    assert tsv["index"].tolist() == [i + k * TSV_CIRCULAR_OFFSET for i in range(pairs) for k in range(4)]
    for _, group in tsv.groupby(tsv["index"] % TSV_CIRCULAR_OFFSET):
        answers = {row[row["answer"]] for _, row in group.iterrows()}
        assert len(group) == 4 and len(answers) == 1 and len(set(group["answer"])) == 4


def test_exports_are_byte_identical_and_reject_nothing_to_export(tmp_path: Path, paired4) -> None:
    items, _ = paired4
    a, b = export_all(items, tmp_path / "a"), export_all(items, tmp_path / "b")

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert not [p for p in (tmp_path / "a").rglob("*") if ".tmp" in p.name]  # no temporaries left
    assert Path(a["hf"]).name == "hf" and Path(b["vlmevalkit"]).name == "benchmark.tsv"
    # a second export into the same folder with fewer shards leaves no stale shard behind
    write_hf_parquet(items, tmp_path / "a" / "hf", rows_per_shard=7)
    write_hf_parquet(items, tmp_path / "a" / "hf")
    assert [p.name for p in (tmp_path / "a" / "hf" / "data").iterdir()] == ["test-00000-of-00001.parquet"]
    with pytest.raises(UserError, match="no items"):
        export_all([], tmp_path / "c")
    with pytest.raises(UserError, match="unknown export format"):
        export_all(items, tmp_path / "c", formats=("llava", "csv"))
