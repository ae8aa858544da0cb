"""vlm_classdata.wordnet: the place found without NLTK is the place loaded, and the reader without NLTK's
multilingual version map reads WordNet 3.0 exactly like NLTK's own reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import nltk.data
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from vlm_classdata.lexicon import stopwords
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import locate_wordnet, nltk_data_dirs, synset_from_wnid, wordnet

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "VLMCD_CACHE": os.environ["VLMCD_CACHE"]}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**base, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_nltk_data_dirs_are_nltks_own_list(tmp_path):
    code = ("import json, sys; from vlm_classdata.wordnet import nltk_data_dirs; ours = nltk_data_dirs(); "
            "assert 'nltk' not in sys.modules; import nltk.data; print(json.dumps([ours, nltk.data.path]))")
    env = {"HOME": str(tmp_path / "home"), "NLTK_DATA": f"{tmp_path / 'a'}{os.pathsep}~/b{os.pathsep}"}
    ours, theirs = json.loads(_run(code, env).stdout)
    assert ours == theirs and ours[:3] == [str(tmp_path / "a"), str(tmp_path / "home" / "b"),
                                           str(tmp_path / "home" / "nltk_data")]


def test_the_project_cache_put_on_nltks_path_is_not_taken_for_user_data():
    """wordnet() puts the project cache on ``nltk.data.path`` (NLTK reads only there); the search order and the
    place found in this process stay what a fresh process (NLTK not imported) finds, so both stamp the same files."""
    wordnet()
    code = ("import json; from vlm_classdata.wordnet import locate_wordnet, nltk_data_dirs; w = locate_wordnet(); "
            "print(json.dumps([nltk_data_dirs(), str(w.path), w.source]))")
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "NLTK_DATA")}
    here = locate_wordnet()
    assert json.loads(_run(code, env).stdout) == [nltk_data_dirs(), str(here.path), here.source]


def _copy_to_nltk_data(root: Path) -> Path:
    target = root / "corpora" / "wordnet"
    shutil.copytree(locate_wordnet().path, target)
    return target


def test_wordnet_is_read_from_the_located_folder_or_zip(tmp_path, monkeypatch):
    """A copy on NLTK's data path (``nltk.data.path``, what ``NLTK_DATA`` fills) is found, and loaded, both as a
    folder and as NLTK's ``wordnet.zip``."""
    folder = _copy_to_nltk_data(tmp_path / "nltk")
    archive = tmp_path / "zipped" / "corpora" / "wordnet.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as z:  # NLTK's own layout: wordnet.zip/wordnet/<files>
        for f in sorted(folder.iterdir()):
            z.write(f, f"wordnet/{f.name}")
    for data_dir, place in ((tmp_path / "nltk", folder), (tmp_path / "zipped", archive)):
        monkeypatch.setattr(nltk.data, "path", [str(data_dir), *nltk.data.path])
        assert locate_wordnet().path == place and locate_wordnet().source == "nltk-data"
        wn = wordnet.__wrapped__()  # a fresh load, leaving the session's reader alone
        assert str(wn.root).startswith(str(place))
        assert wn.synset("tench.n.01").lemma_names() == ["tench", "Tinca_tinca"]
        monkeypatch.undo()


def test_the_version_map_is_skipped_and_would_have_been_the_identity():
    """NLTK's reader maps WordNet 3.0 (the OMW key) onto the loaded version on load; ours skips that work. For a
    loaded 3.0 the map only ever sends a synset to itself (an adjective id to its satellite id), and every lookup
    the lexicon makes answers the same with either reader."""
    ours = wordnet()
    assert ours.map30 is None and isinstance(ours, WordNetCorpusReader)
    root = nltk.data.find("corpora/wordnet", paths=[str(locate_wordnet().data_dir)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": no OMW reader given
        stock = WordNetCorpusReader(root, None)
    assert stock.map30 and all(v == k or (k.endswith("-a") and v == k[:-2] + "-s") for k, v in stock.map30.items())
    assert sum(v == k for k, v in stock.map30.items()) > 100_000
    assert ours._lemma_pos_offset_map == stock._lemma_pos_offset_map
    assert ours._exception_map == stock._exception_map
    for wnid in ClassVocabulary.bundled("imagenet1k").ids:
        mine, theirs = synset_from_wnid(wnid), stock.synset_from_pos_and_offset(wnid[0], int(wnid[1:]))
        assert [(lem.name(), lem.count()) for lem in mine.lemmas()] == [
            (lem.name(), lem.count()) for lem in theirs.lemmas()]
        assert sorted(h.name() for h in mine.member_holonyms()) == sorted(h.name() for h in theirs.member_holonyms())
    for word in ["mouse", "crane", "glasses", "geese", "mice", "tench", *sorted(stopwords())[:50]]:
        assert [s.name() for s in ours.synsets(word)] == [s.name() for s in stock.synsets(word)]
        assert ours._morphy(word, "n") == stock._morphy(word, "n")
