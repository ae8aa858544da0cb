"""The article readers (imagewikiqa.articles and its format modules): every article format on small generated
files, and the offline fallback on real ImageNet wnids."""

from __future__ import annotations

import csv
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagewikiqa.article_titles import read_titles
from imagewikiqa.articles import describe, detect_kind, load_articles
from imagewikiqa.imagenet_wiki import convert_pickle
from imagewikiqa.offline_articles import fallback_articles
from imagewikiqa.records import Article
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
TENCH, TABBY, STRETCHER, GOLDFISH, KIT_FOX = "n01440764", "n02123045", "n04336792", "n01443537", "n02119789"
UNKNOWN = "n09999999"
KIT_FOX_TEXT = ("Kit fox\n\nThe kit fox (\"Vulpes macrotis\") is a fox species of North America. Its range is "
                "primarily in the Southwestern United States and northern and central Mexico.")
TENCH_TEXT = ("Tench\n\nThe tench or doctor fish (\"Tinca tinca\") is a fresh- and brackish-water fish of the "
              "order Cypriniformes found throughout Eurasia.\n\nDescription\n\nThe tench has a stout body.")
STRETCHER_TEXT = "Stretcher\n\nA stretcher is a medical device used to carry a patient."


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k").subset([TENCH, GOLDFISH, KIT_FOX, TABBY, STRETCHER])


def wiki_records() -> list[dict]:
    """Records in the released pickle's layout (a list of {wnid, phrases, articles})."""
    return [
        {"wnid": KIT_FOX, "phrases": ["kit fox", "Vulpes macrotis"], "articles": [KIT_FOX_TEXT]},
        {"wnid": TENCH, "phrases": ["tench", "Tinca tinca"], "articles": [TENCH_TEXT]},
        {"wnid": UNKNOWN, "phrases": ["unknown"], "articles": ["Unknown\n\nNot in the vocabulary."]},
        {"wnid": STRETCHER, "phrases": ["stretcher"], "articles": [STRETCHER_TEXT, ""]},
        {"wnid": GOLDFISH, "phrases": ["goldfish"], "articles": []},
        "not a record",
    ]


def check_wiki(articles: dict, skipped, source: str) -> None:
    # classes in vocabulary order, not file order
    assert list(articles) == [TENCH, KIT_FOX, STRETCHER]
    tench = articles[TENCH][0]
    assert tench.title == "Tench" and tench.source == source
    assert tench.text.startswith("The tench or doctor fish") and "Description" in tench.text
    assert articles[KIT_FOX][0].title == "Kit fox"
    assert articles[STRETCHER] == [Article(STRETCHER, "Stretcher", "A stretcher is a medical device used to "
                                           "carry a patient.", source)]
    assert skipped == {"unknown_class": 1, "empty_text": 1, "no_articles": 1, "not_an_object": 1}


def test_imagenet_wiki_json(tmp_path, vocab):
    path = tmp_path / "imagenet_wiki.json"
    path.write_text(json.dumps(wiki_records()))
    assert detect_kind(path) == "imagenet-wiki"
    articles, skipped = load_articles(path, vocab)
    check_wiki(articles, skipped, "imagenet-wiki:imagenet_wiki.json")
    # the {wnid: [texts]} object form gives the same articles
    obj = tmp_path / "by_wnid.json"
    obj.write_text(json.dumps({TENCH: [TENCH_TEXT], KIT_FOX: KIT_FOX_TEXT, UNKNOWN: ["x"]}))
    by_wnid, skipped = load_articles(obj, vocab, kind="imagenet-wiki")
    assert [a.title for a in by_wnid[TENCH]] == ["Tench"] and by_wnid[TENCH][0].text == articles[TENCH][0].text
    assert list(by_wnid) == [TENCH, KIT_FOX] and skipped == {"unknown_class": 1}


def test_pickle_refused_then_allowed_and_converted(tmp_path, vocab):
    pkl = tmp_path / "class_article_text_descriptions_trainval.pkl"
    with pkl.open("wb") as f:
        pickle.dump(wiki_records(), f)
    for kind in ("auto", "imagenet-wiki"):
        with pytest.raises(UserError) as err:
            load_articles(pkl, vocab, kind=kind)
        message = str(err.value)
        assert "\n" not in message and "arbitrary code" in message
        assert "--allow-pickle" in message and "convert-pickle" in message
    # a pickle under another name is sniffed from its header and refused too
    disguised = tmp_path / "articles.json"
    disguised.write_bytes(pkl.read_bytes())
    with pytest.raises(UserError, match="arbitrary code"):
        load_articles(disguised, vocab)

    articles, skipped = load_articles(pkl, vocab, allow_pickle=True)
    check_wiki(articles, skipped, f"imagenet-wiki:{pkl.name}")

    out = tmp_path / "converted" / "articles.json"
    assert convert_pickle(pkl, out) == len(wiki_records())
    assert json.loads(out.read_text())[0]["wnid"] == KIT_FOX
    converted, skipped = load_articles(out, vocab)  # no opt-in needed for the JSON form
    check_wiki(converted, skipped, "imagenet-wiki:articles.json")
    assert [a.text for g in converted.values() for a in g] == [a.text for g in articles.values() for a in g]

    # the converter's command line, as the refusal message names it
    out2 = tmp_path / "cli.json"
    run = subprocess.run([sys.executable, "-m", "imagewikiqa.sources", "convert-pickle", str(pkl), str(out2)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(out2.read_text()) == json.loads(out.read_text())


def test_convert_pickle_with_numpy_arrays(tmp_path):
    np = pytest.importorskip("numpy")
    pkl = tmp_path / "np.pkl"
    with pkl.open("wb") as f:
        pickle.dump([{"wnid": TENCH, "phrases": np.array(["tench"]), "articles": np.array([TENCH_TEXT])}], f)
    assert convert_pickle(pkl, tmp_path / "np.json") == 1
    assert json.loads((tmp_path / "np.json").read_text())[0]["articles"] == [TENCH_TEXT]
    with pytest.raises(UserError, match="not found"):
        convert_pickle(tmp_path / "missing.pkl", tmp_path / "x.json")


def test_imagenet_wiki_csv_forms(tmp_path, vocab):
    # the released correspondence CSV (titles only) is no article file ...
    corr = tmp_path / "class_article_correspondences_trainval.csv"
    corr.write_text(f"{TENCH}, Tench\n{KIT_FOX}, Kit fox,Swift fox\n{GOLDFISH}, -\n{UNKNOWN}, Nothing\n")
    with pytest.raises(UserError, match="without article text") as err:
        load_articles(corr, vocab)
    assert "\n" not in str(err.value)
    # ... but a title list
    titles, skipped = read_titles(corr, vocab)
    assert titles == {TENCH: ["Tench"], KIT_FOX: ["Kit fox", "Swift fox"]}
    assert skipped == {"no_titles": 1, "unknown_class": 1}

    # a CSV of texts with a header (class by wnid, name, or class id), long multi-line fields
    texts = tmp_path / "articles.csv"
    long_text = "The tabby is a cat.\n\n" + "Stripes run along its flanks. " * 3000
    with texts.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wnid", "class_name", "title", "text"])
        w.writerow([TENCH, "", "Tench", "The tench is a fish."])
        w.writerow(["", "tabby cat", "Tabby cat", long_text])
        w.writerow([UNKNOWN, "", "Nothing", "Unknown class."])
        w.writerow(["", "", "No class", "No class column set."])
        w.writerow([STRETCHER, "", "Stretcher", "  "])
    articles, skipped = load_articles(texts, vocab)
    assert list(articles) == [TENCH, TABBY]
    assert articles[TABBY][0] == Article(TABBY, "Tabby cat", long_text, "imagenet-wiki:articles.csv")
    assert skipped == {"unknown_class": 1, "no_class": 1, "empty_text": 1}

    bad = tmp_path / "bad.csv"
    bad.write_text("wnid,title\nn01440764,Tench\n")
    with pytest.raises(UserError, match="text column"):
        load_articles(bad, vocab)


def test_titles_name_headless_texts(tmp_path, vocab):
    data = [{"wnid": TENCH, "phrases": ["tench"], "articles": ["The tench is a fish.", "Second text."]},
            {"wnid": KIT_FOX, "phrases": ["kit fox", "Vulpes macrotis"], "articles": ["A small fox."]},
            {"wnid": STRETCHER, "articles": ["A litter."]}]
    path = tmp_path / "headless.json"
    path.write_text(json.dumps(data))
    articles, _ = load_articles(path, vocab, titles={TENCH: ["Tench", "Tench (fish)"], "nonsense": ["x"]})
    assert [a.title for a in articles[TENCH]] == ["Tench", "Tench (fish)"]
    assert articles[TENCH][0].text == "The tench is a fish."
    assert articles[KIT_FOX][0].title == "kit fox"          # no title given: the first phrase
    assert articles[STRETCHER][0].title == "stretcher"      # nor phrases: the class name
    _, skipped = load_articles(path, vocab, titles={"nonsense": ["x"]})
    assert skipped == {"titles_unknown_class": 1}


def test_jsonl_resolution_and_round_trip(tmp_path, vocab):
    path = tmp_path / "articles.jsonl"
    rows = [
        {"class_id": STRETCHER, "title": "Stretcher", "text": "A stretcher carries patients."},
        {"wnid": TENCH, "title": "Tench", "text": "The tench lives in lakes."},
        {"class_name": "Kit Fox", "title": "Kit fox", "text": "A fox of North America."},
        {"class_id": "Tinca tinca", "title": "Tench 2", "text": "Resolved through a synonym."},
        {"class_id": UNKNOWN, "title": "?", "text": "Unknown."},
        {"wnid": UNKNOWN, "title": "?", "text": "Unknown too."},
        {"title": "no class", "text": "No class field."},
        {"class_id": TENCH, "title": "Tench", "text": ""},
        {"class_id": TENCH, "title": "Tench", "text": 12},
        {"wnid": TENCH, "title": "Tench", "text": "The tench lives in lakes."},
        ["a", "list"],
    ]
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write("{broken json\n\n")
    assert detect_kind(path) == "jsonl"
    articles, skipped = load_articles(path, vocab)
    assert list(articles) == [TENCH, KIT_FOX, STRETCHER]
    assert [a.title for a in articles[TENCH]] == ["Tench", "Tench 2"]
    assert articles[KIT_FOX][0] == Article(KIT_FOX, "Kit fox", "A fox of North America.", "jsonl:articles.jsonl")
    assert skipped == {"unknown_class": 2, "no_class": 1, "empty_text": 1, "bad_text": 1,
                       "duplicate_article": 1, "bad_json": 1, "not_an_object": 1}


def wiki_table(n_filler: int = 300) -> pa.Table:
    rows = [{"id": str(i), "title": f"Filler article {i}", "text": f"Filler {i}."} for i in range(n_filler)]
    rows.insert(17, {"id": "a", "title": "Tench", "text": "The tench is a fish of Eurasia."})
    rows.insert(150, {"id": "b", "title": "Kit fox", "text": "The kit fox is a fox."})
    rows.insert(151, {"id": "c", "title": "Tabby cat", "text": "A tabby is any domestic cat with stripes."})
    rows.insert(260, {"id": "d", "title": "tinca_tinca", "text": "Second tench article."})
    rows.insert(270, {"id": "e", "title": "Stretcher", "text": ""})
    return pa.Table.from_pylist(rows)


def test_hf_wikipedia_parquet(tmp_path, vocab):
    folder = tmp_path / "wiki" / "20231101.en"
    folder.mkdir(parents=True)
    table = wiki_table()
    pq.write_table(table.slice(0, 200), folder / "train-00000-of-00002.parquet", row_group_size=40)
    pq.write_table(table.slice(200), folder / "train-00001-of-00002.parquet", row_group_size=40)
    assert detect_kind(tmp_path / "wiki") == "hf-wikipedia"
    articles, skipped = load_articles(tmp_path / "wiki", vocab)
    # default wanted titles: the class names and synonyms ("Tinca tinca"), case- and "_"-insensitive
    assert list(articles) == [TENCH, KIT_FOX, TABBY]
    assert [a.text for a in articles[TENCH]] == ["The tench is a fish of Eurasia.", "Second tench article."]
    assert articles[KIT_FOX] == [Article(KIT_FOX, "Kit fox", "The kit fox is a fox.", "hf-wikipedia:wiki")]
    assert skipped == {"empty_text": 1, "title_not_found": 1}      # stretcher's text empty; goldfish missing

    # a glob, and titles from a JSON file (class id, wnid or name keys)
    titles = tmp_path / "titles.json"
    titles.write_text(json.dumps({TABBY: ["TABBY CAT"], "kit fox": "Filler article 3", UNKNOWN: ["Tench"]}))
    articles, skipped = load_articles(str(folder / "*.parquet"), vocab, titles=titles)
    assert {cid: [a.title for a in g] for cid, g in articles.items()} == {
        KIT_FOX: ["Filler article 3"], TABBY: ["Tabby cat"]}
    assert skipped == {"titles_unknown_class": 1}

    with pytest.raises(UserError, match="no .parquet"):
        load_articles(str(tmp_path / "nowhere" / "*.parquet"), vocab)
    pq.write_table(pa.table({"name": ["Tench"]}), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="no title/text column"):
        load_articles(tmp_path / "bad.parquet", vocab)


def test_hf_wikipedia_save_to_disk(tmp_path, vocab):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(wiki_table().to_pylist())
    ds.save_to_disk(str(tmp_path / "saved"), max_shard_size="8KB")
    assert len(list((tmp_path / "saved").glob("*.arrow"))) > 1
    articles, skipped = load_articles(tmp_path / "saved", vocab)
    assert [a.title for a in articles[TENCH]] == ["Tench", "tinca_tinca"]
    assert list(articles) == [TENCH, KIT_FOX, TABBY] and skipped == {"empty_text": 1, "title_not_found": 1}
    # a DatasetDict folder; titles from the ImageNet-Wiki correspondence CSV
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dict"))
    corr = tmp_path / "corr.csv"
    corr.write_text(f"{TABBY}, Tabby cat\n{STRETCHER}, Stretcher\n{GOLDFISH}, -\n")
    articles, skipped = load_articles(tmp_path / "dict", vocab, kind="hf-wikipedia", titles=corr)
    assert list(articles) == [TABBY]
    assert articles[TABBY][0].text == "A tabby is any domestic cat with stripes."
    assert skipped == {"titles_no_titles": 1, "empty_text": 1}     # stretcher found, but its text is empty


def test_bad_paths_and_kinds(tmp_path, vocab):
    for call in (lambda: load_articles(tmp_path / "missing.jsonl", vocab),
                 lambda: load_articles(tmp_path / "missing.json", vocab, kind="imagenet-wiki"),
                 lambda: load_articles(tmp_path / "missing", vocab, kind="hf-wikipedia"),
                 lambda: load_articles(tmp_path, vocab, kind="jsonl"),
                 lambda: load_articles(tmp_path / "x.jsonl", vocab, kind="yaml")):
        with pytest.raises(UserError) as err:
            call()
        assert "\n" not in str(err.value)
    odd = tmp_path / "articles.txt"
    odd.write_text("text")
    with pytest.raises(UserError, match="cannot tell"):
        load_articles(odd, vocab)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no save_to_disk"):
        load_articles(empty, vocab)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_articles(broken, vocab)


def test_fallback_real_imagenet_classes(vocab):
    small = vocab.subset([TENCH, TABBY, STRETCHER])
    articles, skipped = fallback_articles(small)
    assert list(articles) == [TENCH, TABBY, STRETCHER] and not skipped
    for cid in articles:
        assert [a.source for a in articles[cid]] == ["wordnet", "imagenet-classes"]
    tench_wn, tench_ic = articles[TENCH]
    assert tench_wn.title == "WordNet: tench.n.01"
    assert tench_wn.text.startswith("Tench: freshwater dace-like game fish of Europe and western Asia noted for "
                                    "ability to survive outside water. ")
    assert " It is a kind of cyprinid. " in tench_wn.text
    assert " It is a member of genus Tinca." in tench_wn.text
    assert " Other names: Tinca tinca. " in tench_wn.text
    assert tench_ic.text.startswith("A thick-bodied freshwater fish with a smooth-looking body")
    assert "barbels" in tench_ic.text and tench_ic.title == "tench, Tinca tinca"
    tabby_wn, tabby_ic = articles[TABBY]
    assert "a cat with a grey or tawny coat mottled with black" in tabby_wn.text
    assert " It is a kind of domestic cat." in tabby_wn.text
    assert 'distinct dark "M" marking on the forehead' in tabby_ic.text
    stretcher_wn, stretcher_ic = articles[STRETCHER]
    assert "a litter for transporting people who are ill or wounded or dead" in stretcher_wn.text
    assert " It is a kind of litter." in stretcher_wn.text
    assert stretcher_ic.text.startswith("A stretcher is a narrow portable bed or litter used to carry")

    # a class outside ImageNet-1k and without a synset is counted, not dropped silently
    custom = ClassVocabulary.from_names(["tench", "zzqx blorft"], ids=["fish", "nonsense"])
    got, skipped = fallback_articles(custom)
    assert list(got) == ["fish"] and [a.source for a in got["fish"]] == ["wordnet"]
    assert skipped == {"no_synset": 1, "no_imagenet_description": 2}

    summary = describe(articles)
    assert summary["classes"] == 3 and summary["articles"] == 6
    assert summary["characters"] == sum(len(a.text) for g in articles.values() for a in g)
    assert summary["by_source"]["wordnet"]["articles"] == 3
    assert summary["by_source"]["imagenet-classes"]["classes"] == 3
