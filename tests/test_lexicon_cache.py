"""The lexicon cache (vlm_classdata.lexicon.cache): a cached lexicon is the built one, every input is in the key,
a bad entry is rebuilt, an unwritable cache is no cache, concurrent writers do not corrupt it, and a warm start
does not load NLTK."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nltk.data
import pytest

from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.lexicon import cache as lexicon_cache
from vlm_classdata.lexicon.table import build_apart
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import locate_wordnet

REPO = Path(__file__).resolve().parents[1]
TENCH, GOOSE, MOUSE = "n01440764", "n01855672", "n03793489"


@pytest.fixture(scope="module")
def project_cache(tmp_path_factory) -> Path:
    """One project cache for this file (WordNet is copied into it on first use)."""
    return tmp_path_factory.mktemp("vlmcd")


@pytest.fixture
def cache(project_cache, monkeypatch) -> Path:
    """The lexicon folder of ``project_cache``, empty, with the cache switched on."""
    monkeypatch.setenv("VLMCD_CACHE", str(project_cache))
    monkeypatch.delenv(lexicon_cache.ENV_SWITCH, raising=False)
    folder = project_cache / "lexicon"
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.unlink(missing_ok=True)  # a test may have put a file in its place
    return folder


@pytest.fixture(scope="module")
def inet() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k")


def small_vocab(**changes: object) -> ClassVocabulary:
    """Three ImageNet classes; ``changes`` replace fields of the goose entry."""
    goose = {"id": GOOSE, "name": "goose", **changes}
    return ClassVocabulary.from_json({"dataset": "small", "classes": [
        {"id": TENCH, "name": "tench"}, goose, {"id": MOUSE, "name": "computer mouse"}]})


def python_in_a_fresh_process(code: str, timeout: float) -> str:
    """What ``python -c code`` prints, run from the checkout with this test's environment (it must succeed)."""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return out.stdout


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()


def same_lexicon(a: Lexicon, b: Lexicon) -> None:
    """Forms (text, class, kind, flags, note, order), summary and table are equal."""
    assert a.forms == b.forms and a.method == b.method
    assert a.describe() == b.describe()
    assert a.to_frame().equals(b.to_frame())


# ----- a cached lexicon is the built one -------------------------------------------------------------------------
@pytest.mark.parametrize("method, aliases", [("wordnet", True), ("wordnet", False), ("paper", False)])
def test_cached_imagenet_lexicon_equals_the_freshly_built_one(cache, inet, tmp_path, method, aliases):
    alias_file = None
    if aliases:  # "tench" as an alias of goose makes it shared: flags depend on the aliases too
        alias_file = tmp_path / "aliases.json"
        alias_file.write_text(json.dumps({TENCH: ["doctor fish"], GOOSE: ["honker", "tench"]}), encoding="utf-8")
    fresh = Lexicon.build(inet, method=method, aliases=alias_file, cache=False)
    assert entries(cache) == set()  # cache=False writes nothing
    first = Lexicon.build(inet, method=method, aliases=alias_file)  # a miss: built and stored
    (stored,) = entries(cache)
    key = stored.removesuffix(".json")
    assert lexicon_cache.load_forms(key, inet) == fresh.forms  # what a warm start reads
    second = Lexicon.build(inet, method=method, aliases=alias_file)  # a hit
    assert entries(cache) == {stored}
    same_lexicon(first, fresh)
    same_lexicon(second, fresh)
    if aliases:
        assert {"shared"} <= set(next(f for f in second.forms_of(GOOSE) if f.text == "tench").flags)


def test_warm_start_reads_the_entry_without_loading_nltk(cache, inet):
    Lexicon.build(inet)  # fills the cache
    code = ("import sys, time; from vlm_classdata.vocabulary import ClassVocabulary; "
            "from vlm_classdata.lexicon import Lexicon; v = ClassVocabulary.bundled('imagenet1k'); "
            "t = time.perf_counter(); lex = Lexicon.build(v); s = time.perf_counter() - t; "
            "print(len(lex.forms), 'nltk' in sys.modules, s)")
    n, nltk_loaded, seconds = python_in_a_fresh_process(code, timeout=60).split()
    assert int(n) == len(Lexicon.build(inet, cache=False).forms)
    assert nltk_loaded == "False"
    assert float(seconds) < 1.0  # ~0.005 s on the development machine; loose for a busy CI runner


# ----- every input is in the key -----------------------------------------------------------------------------
def test_each_input_of_the_key_makes_a_miss(cache, tmp_path):
    aliases = tmp_path / "aliases.tsv"
    aliases.write_text(f"{GOOSE}\thonker\n", encoding="utf-8")
    base = Lexicon.build(small_vocab(), aliases=aliases)
    assert len(entries(cache)) == 1
    seen = set(entries(cache))

    def miss(**kwargs: object) -> Lexicon:
        """Build with these inputs: it must be a new entry, equal to a build without the cache."""
        vocab = kwargs.pop("vocab", small_vocab())
        built = Lexicon.build(vocab, **{"aliases": aliases, **kwargs})
        new = entries(cache) - seen
        assert len(new) == 1, kwargs
        seen.update(new)
        same_lexicon(built, Lexicon.build(vocab, **{"aliases": aliases, **kwargs}, cache=False))
        return built

    assert "honker" in {f.text for f in base.forms_of(GOOSE)}
    assert "gander" in {f.text for f in miss(vocab=small_vocab(synonyms=["gander"])).forms_of(GOOSE)}
    assert miss(vocab=small_vocab(name="grey goose")).forms_of(GOOSE)[0].text == "grey goose"
    miss(vocab=small_vocab(wnid="n07646821"))  # goose.n.03 (the meat): another synset, same display name
    renamed_id = miss(vocab=small_vocab(id="goose-1", wnid=GOOSE), aliases={})  # the class id alone
    assert renamed_id.forms_of("goose-1")[0].text == "goose"
    miss(vocab=ClassVocabulary.from_json({"dataset": "small", "classes": list(reversed(
        small_vocab().to_json()["classes"]))}))  # order
    miss(plurals=False)
    miss(method="paper")
    aliases.write_text(f"{GOOSE}\thonker\tbrant\n", encoding="utf-8")
    assert "brant" in {f.text for f in miss().forms_of(GOOSE)}
    assert "snow goose" in {f.text for f in miss(aliases={GOOSE: ["snow goose"]}).forms_of(GOOSE)}
    # unchanged inputs hit again; the vocabulary's dataset name is not an input of the forms
    Lexicon.build(ClassVocabulary.from_json({**small_vocab().to_json(), "dataset": "renamed"}), aliases={
        GOOSE: ["snow goose"]})
    assert entries(cache) == seen


def test_the_wordnet_files_read_are_in_the_key(cache, tmp_path, monkeypatch):
    """The key stamps the files of the WordNet folder actually read (here a copy on NLTK's data path)."""
    original = locate_wordnet()
    copy = tmp_path / "nltk" / "corpora" / "wordnet"
    shutil.copytree(original.path, copy)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk"), *nltk.data.path])
    assert locate_wordnet().path == copy
    vocab = small_vocab()
    key = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    assert key == lexicon_cache.cache_key(vocab, "wordnet", True, {})
    st = (copy / "index.noun").stat()
    os.utime(copy / "index.noun", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    with open(copy / "cntlist.rev", "ab") as f:
        f.write(b"\n")
    grown = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    assert len({key, touched, grown}) == 3
    assert lexicon_cache.cache_key(vocab, "paper", True, {}) == lexicon_cache.cache_key(vocab, "paper", True, {})


@pytest.mark.parametrize("path, edit", [
    ("vlm_classdata/lexicon/plurals.py", lambda text: text + "\n# a change\n"),
    ("vlm_classdata/wordnet.py", lambda text: text.replace("WordNet", "Wordnet", 1)),
    ("vlm_classdata/data/stopwords.txt", lambda text: text + "newword\n"),
])
def test_a_change_of_the_lexicon_code_or_stoplist_changes_the_key(tmp_path, path, edit):
    """A copy of the package, edited in one file, digests differently from an unedited copy."""
    digests = []
    for name, change in (("same", None), ("edited", edit)):
        root = tmp_path / name
        shutil.copytree(REPO / "vlm_classdata", root / "vlm_classdata",
                        ignore=shutil.ignore_patterns("__pycache__"))
        if change is not None:
            target = root / path
            target.write_text(change(target.read_text(encoding="utf-8")), encoding="utf-8")
        code = "from vlm_classdata.lexicon import cache; print(cache.code_digest())"
        out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(root)})
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.strip())
    assert digests[0] == lexicon_cache.code_digest()  # the copy digests like the tree it was copied from
    assert digests[1] != digests[0]


# ----- a bad entry is rebuilt, a cache that cannot be written is no cache ------------------------------------------
DAMAGE = {
    "not json": lambda data: b"\x00\xff{not json",
    "truncated": lambda data: json.dumps(data).encode()[:-40],
    "a list": lambda data: b"[1, 2, 3]",
    "other format": lambda data: json.dumps({**data, "format": data["format"] + 1}).encode(),
    "other key": lambda data: json.dumps({**data, "key": "0" * 64}).encode(),
    "missing column": lambda data: json.dumps({k: v for k, v in data.items() if k != "note"}).encode(),
    "short column": lambda data: json.dumps({**data, "kind": data["kind"][:-1]}).encode(),
    "unknown class": lambda data: json.dumps({**data, "class_id": ["n99999999", *data["class_id"][1:]]}).encode(),
    "unknown kind": lambda data: json.dumps({**data, "kind": ["nickname", *data["kind"][1:]]}).encode(),
    "unknown flag": lambda data: json.dumps({**data, "flags": ["rare", *data["flags"][1:]]}).encode(),
    "unsorted flags": lambda data: json.dumps({**data, "flags": ["short,ambiguous", *data["flags"][1:]]}).encode(),
    "empty text": lambda data: json.dumps({**data, "text": ["", *data["text"][1:]]}).encode(),
    "number text": lambda data: json.dumps({**data, "text": [7, *data["text"][1:]]}).encode(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_rebuilt_and_overwritten(cache, damage):
    vocab = small_vocab()
    fresh = Lexicon.build(vocab, cache=False)
    Lexicon.build(vocab)
    (path,) = cache.glob("*.json")
    good = json.loads(path.read_bytes())
    path.write_bytes(DAMAGE[damage](good))
    assert lexicon_cache.load_forms(path.stem, vocab) is None
    same_lexicon(Lexicon.build(vocab), fresh)
    assert json.loads(path.read_bytes()) == good  # overwritten with a good entry


def test_an_entry_that_cannot_be_read_is_no_cache(cache):
    vocab = small_vocab()
    key = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    (cache / f"{key}.json").mkdir(parents=True)  # a folder where the entry file should be
    same_lexicon(Lexicon.build(vocab), Lexicon.build(vocab, cache=False))
    assert (cache / f"{key}.json").is_dir() and lexicon_cache.load_forms(key, vocab) is None


def test_a_cache_folder_that_cannot_be_written_is_no_cache(cache):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the lexicon folder should be", encoding="utf-8")
    vocab = small_vocab()
    same_lexicon(Lexicon.build(vocab), Lexicon.build(vocab, cache=False))
    assert lexicon_cache.store_forms("0" * 64, Lexicon.build(vocab, cache=False).forms) is False
    assert cache.read_text(encoding="utf-8").startswith("a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_is_no_cache(cache):
    cache.mkdir(parents=True)
    cache.chmod(0o500)
    try:
        vocab = small_vocab()
        same_lexicon(Lexicon.build(vocab), Lexicon.build(vocab, cache=False))
        assert entries(cache) == set()
    finally:
        cache.chmod(0o700)


def test_old_entries_beyond_the_limit_are_removed(cache, monkeypatch):
    monkeypatch.setattr(lexicon_cache, "MAX_ENTRIES", 3)
    forms = Lexicon.build(small_vocab(), cache=False).forms
    for i in range(5):
        assert lexicon_cache.store_forms(f"{i:064d}", forms)
        os.utime(cache / f"{i:064d}.json", ns=(10**18 + i, 10**18 + i))
    assert entries(cache) == {f"{i:064d}.json" for i in (2, 3, 4)}


# ----- concurrent writers -------------------------------------------------------------------------------------------
def _write_many(key: str, forms: list, times: int) -> None:
    for _ in range(times):
        lexicon_cache.store_forms(key, forms)


def test_concurrent_writers_never_leave_a_wrong_entry(cache):
    vocab = small_vocab()
    forms = Lexicon.build(vocab, cache=False).forms
    key = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(key, forms, 200)) for _ in range(3)]
    for w in writers:
        w.start()
    reads = []
    while any(w.is_alive() for w in writers):
        reads.append(lexicon_cache.load_forms(key, vocab))
    for w in writers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert all(r is None or r == forms for r in reads) and any(r == forms for r in reads)
    assert lexicon_cache.load_forms(key, vocab) == forms
    assert [p.name for p in cache.iterdir()] == [f"{key}.json"]  # no temporary file left behind


# ----- the switches ---------------------------------------------------------------------------------------------
def test_the_environment_switch(cache, monkeypatch):
    vocab = small_vocab()
    for off in ("0", "false", "OFF"):
        monkeypatch.setenv(lexicon_cache.ENV_SWITCH, off)
        Lexicon.build(vocab)
        assert entries(cache) == set()
    monkeypatch.setenv(lexicon_cache.ENV_SWITCH, "1")
    Lexicon.build(vocab)
    assert len(entries(cache)) == 1
    monkeypatch.setenv(lexicon_cache.ENV_SWITCH, "sometimes")
    with pytest.raises(UserError, match="VLMCD_LEXICON_CACHE must be 1 or 0"):
        Lexicon.build(vocab)


def test_a_bad_switch_value_is_a_one_line_cli_error(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("a tench\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "corpora_stats", "count", "--corpus", f"tiny={corpus}",
                          "--out", str(tmp_path / "out"), "--quiet"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(REPO), lexicon_cache.ENV_SWITCH: "maybe"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: VLMCD_LEXICON_CACHE must be 1 or 0 (cache on or off), "
                                               "got 'maybe'"]


# ----- a cold build runs in a child process ----------------------------------------------------------------------
def test_a_cold_build_happens_in_a_child_and_the_caller_never_loads_nltk(cache, inet):
    code = ("import sys; from vlm_classdata.vocabulary import ClassVocabulary; "
            "from vlm_classdata.lexicon import Lexicon; lex = Lexicon.build(ClassVocabulary.bundled('imagenet1k')); "
            "import json; print(json.dumps([[f.text, f.class_id, f.kind, list(f.flags)] for f in lex.forms])); "
            "print('nltk' in sys.modules)")
    forms_json, nltk_loaded = python_in_a_fresh_process(code, timeout=120).splitlines()
    fresh = Lexicon.build(inet, cache=False)
    assert json.loads(forms_json) == [[f.text, f.class_id, f.kind, list(f.flags)] for f in fresh.forms]
    assert nltk_loaded == "False" and len(entries(cache)) == 1


def test_a_failing_child_leaves_the_build_to_the_caller(cache, monkeypatch):
    vocab = small_vocab()
    key = lexicon_cache.cache_key(vocab, "wordnet", True, {})
    assert build_apart(vocab, True, {}, key) == Lexicon.build(vocab, cache=False).forms  # the real child
    monkeypatch.setattr(sys, "executable", "/bin/false")
    shutil.rmtree(cache)
    assert build_apart(vocab, True, {}, key) is None  # the child failed: nothing stored, the caller builds
    assert not entries(cache)
