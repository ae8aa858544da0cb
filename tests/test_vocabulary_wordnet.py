"""Class vocabularies (unique names, explicit renames, lookups) and finding WordNet 3.0 offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlm_classdata.atomic import json_text
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import BUNDLED, ClassEntry, ClassVocabulary
from vlm_classdata.wordnet import cache_dir, ensure_wordnet, synset_from_wnid, wnid_of, wordnet

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,count", [("imagenet1k", 1000), ("flowers102", 102), ("stanford_cars", 196),
                                        ("caltech101", 100), ("cub200", 200), ("food101", 101), ("objectnet", 313)])
def test_bundled_lists_have_unique_ids_and_names(name, count):
    v = ClassVocabulary.bundled(name)
    assert len(v) == count == len(set(v.ids)) == len({n.lower() for n in v.names})
    assert [e.index for e in v] == list(range(count))


def test_imagenet_clashes_are_resolved_explicitly():
    v = ClassVocabulary.bundled("imagenet1k")
    assert v.ids[0] == "n01440764" and v.ids[-1] == "n15075141" and v.ids == sorted(v.ids)
    # WordNet has two "crane" and two "maillot" synsets; CLIP's list repeats "missile" and "sunglasses"
    assert v["n02012849"].name != v["n03126707"].name
    assert v["n03710637"].name != v["n03710721"].name
    assert v["n03773504"].name == "missile" and v["n04008634"].name == "projectile"
    assert v["n04355933"].name == "sunglass" and v["n04356056"].name == "sunglasses"
    assert set(v.renamed) == {"n04008634", "n04355933"}
    assert all({"from", "to", "why"} <= set(r) for r in v.renamed.values())
    # a name two classes share resolves to neither; a unique synonym resolves
    assert v.resolve_label("crane")[:2] == (None, "ambiguous_class")
    assert v.resolve_label("Tinca_tinca") == ("n01440764", None, "")
    assert v.by_name("TENCH").class_id == "n01440764"


def test_from_names_numbers_repeats_and_records_them():
    v = ClassVocabulary.from_names(["cat", "dog", "Cat"], dataset="x")
    assert v.names == ["cat", "dog", "Cat (2)"]
    assert v.renamed == {"2": {"from": "Cat", "to": "Cat (2)", "why": "repeated display name"}}


def test_load_class_list_files(tmp_path):
    (tmp_path / "a.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert ClassVocabulary.load(tmp_path / "a.txt").names == ["tench", "goldfish"]
    (tmp_path / "b.txt").write_text("0\tcat\n1\tdog\n")
    assert ClassVocabulary.load(tmp_path / "b.txt").ids == ["0", "1"]
    (tmp_path / "c.json").write_text(json.dumps(["rose", "tulip"]))
    assert ClassVocabulary.load(tmp_path / "c.json").names == ["rose", "tulip"]
    (tmp_path / "d.json").write_text(json.dumps({"classes": [{"id": "r", "name": "rose", "synonyms": ["Rosa"]}]}))
    assert ClassVocabulary.load(tmp_path / "d.json")["r"].synonyms == ("Rosa",)
    with pytest.raises(UserError, match="neither a bundled list"):
        ClassVocabulary.load(tmp_path / "missing.json")
    with pytest.raises(UserError):
        ClassVocabulary.bundled("imagenet22k")
    sub = ClassVocabulary.bundled("imagenet1k").subset(["n01443537", "n01440764"])
    assert sub.ids == ["n01440764", "n01443537"] and sub.by_index(1).index == 1
    assert set(BUNDLED) >= {"imagenet1k", "food101"}


@pytest.mark.parametrize("name", BUNDLED)
def test_save_is_the_one_classes_json_writer_and_load_reads_it_back(tmp_path, name):
    vocab = ClassVocabulary.bundled(name)
    vocab.save(tmp_path / "out" / "classes.json")
    text = (tmp_path / "out" / "classes.json").read_text(encoding="utf-8")
    assert text == json_text(vocab.to_json())  # the layout builds have always written
    assert ClassVocabulary.load(tmp_path / "out" / "classes.json") == vocab
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["classes.json"]  # no temporary sibling left


def test_save_round_trips_renames_synonyms_and_foreign_wnids(tmp_path):
    renamed = ClassVocabulary.from_names(["cat", "dog", "Cat"], ["a", "b", "n01440764"], dataset="pets")
    custom = ClassVocabulary("rös", [
        ClassEntry(0, "7", "tench", ("Tinca tinca",), "n01440764"), ClassEntry(1, "9", "crème brûlée")])
    for vocab in (renamed, renamed.subset(["b", "n01440764"]), custom):
        vocab.save(tmp_path / "classes.json")
        back = ClassVocabulary.load(tmp_path / "classes.json")
        assert back == vocab and back.renamed == vocab.renamed
        assert [e.wnid for e in back] == [e.wnid for e in vocab]
    assert "crème brûlée" in (tmp_path / "classes.json").read_text(encoding="utf-8")  # non-ASCII kept


def test_load_reads_the_classes_json_layouts_count_and_mine_write(tmp_path):
    vocab = ClassVocabulary.from_names(["crème", "dog"], dataset="x")
    (tmp_path / "count.json").write_text(json.dumps(vocab.to_json(), indent=1))
    (tmp_path / "mine.json").write_text(json.dumps(vocab.to_json(), indent=1, ensure_ascii=False) + "\n")
    assert ClassVocabulary.load(tmp_path / "count.json") == vocab
    assert ClassVocabulary.load(tmp_path / "mine.json") == vocab


def test_from_wnids_uses_clean_names_then_wordnet():
    v = ClassVocabulary.from_wnids(["n01440764", "n02084071"])  # tench (ImageNet-1k), dog (not in 1k)
    assert v.names == ["tench", "dog"]
    assert "domestic dog" in v["n02084071"].synonyms


def test_wordnet_is_3_0_and_wnids_round_trip():
    wn = wordnet()
    assert wn.get_version() == "3.0"
    s = synset_from_wnid("n01440764")
    assert s.name() == "tench.n.01" and wnid_of(s) == "n01440764"
    assert s.lexname() == "noun.animal"  # needs the lexnames file
    for wnid in ClassVocabulary.bundled("imagenet1k").ids[::50]:
        assert wnid_of(synset_from_wnid(wnid)) == wnid


def _probe(tmp_path: Path, env: dict, code: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "VLMCD_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


FIND = "from vlm_classdata.wordnet import ensure_wordnet, wordnet; print(ensure_wordnet()); print(wordnet().synset('tench.n.01'))"


def test_lookup_order_existing_nltk_corpus_first(tmp_path):
    ensure_wordnet()
    src = cache_dir() / "nltk_data" / "corpora" / "wordnet"
    shutil.copytree(src, tmp_path / "nltk" / "corpora" / "wordnet")
    res = _probe(tmp_path, {"NLTK_DATA": str(tmp_path / "nltk")}, FIND)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "nltk-data"
    assert not (tmp_path / "cache").exists()  # nothing copied


def test_lookup_order_system_dict_is_copied_into_the_cache(tmp_path):
    system = Path("/usr/share/wordnet")
    if not (system / "data.noun").is_file():
        pytest.skip("no system WordNet dict on this machine")
    dict_copy = tmp_path / "dict"
    shutil.copytree(system, dict_copy)
    res = _probe(tmp_path, {"WNSEARCHDIR": str(dict_copy), "NLTK_DATA": str(tmp_path / "empty")}, FIND)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str(dict_copy), "Synset('tench.n.01')"]
    assert (tmp_path / "cache" / "nltk_data" / "corpora" / "wordnet" / "lexnames").is_file()


def test_missing_wordnet_is_one_clear_error(tmp_path):
    code = ("import vlm_classdata.wordnet as w; w.SYSTEM_DIRS = ();\n"
            "from vlm_classdata.errors import run_cli\nimport sys\n"
            "sys.exit(run_cli(lambda argv: w.ensure_wordnet()))")
    res = _probe(tmp_path, {"NLTK_DATA": str(tmp_path / "empty")}, code)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: WordNet 3.0 not found: install it with 'apt-get install wordnet-base")
    assert len(res.stderr.strip().splitlines()) == 1


def test_resolve_label_is_the_one_label_resolver():
    v = ClassVocabulary.bundled("imagenet1k")
    assert v.resolve_label("n01443537") == ("n01443537", None, "")
    assert v.resolve_label("Great White Shark") == ("n01484850", None, "")
    assert v.resolve_label("great_white_shark")[0] == "n01484850"
    assert v.resolve_label(0)[0] == "n01440764" and v.resolve_label("999")[0] == "n15075141"
    assert v.resolve_label(3.0)[0] == v.ids[3]
    assert v.resolve_label(None)[1] == v.resolve_label("  ")[1] == v.resolve_label(float("nan"))[1] == "no_label"
    for bad in (1000, -2, 2.5, True, "no such thing", ["x"]):
        cid, skip, detail = v.resolve_label(bad)
        assert cid is None and skip == "unknown_class" and detail.startswith("label ")
    # a name two classes share is ambiguous, not unknown: both candidates are named
    assert v.resolve_label("crane") == (None, "ambiguous_class", "label 'crane' names 2 classes: "
                                        "n02012849 (crane bird), n03126707 (construction crane)")
