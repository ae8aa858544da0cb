"""``count_corpora`` on real files writes exactly what the oracle (``tests/count_oracle.py``) counts.

One plain-text corpus of 1.1 MiB holds every kind of line the reader must get right (CRLF and CR-CR-LF ends, a
lone CR inside a line, no final newline, a non-UTF-8 line holding a class name, whitespace-only lines of every
kind, a too-long line, a line of exactly ``max_doc_bytes``) and a multiword name that straddles the reader's
1 MiB chunk boundary. Its tables, snippets and read statistics are compared with the oracle's; gzip (two
members) and zstd (two frames) copies, JSONL and parquet copies of its documents, a folder of three parts
read by one or two workers, and (once ``CountConfig.split_bytes`` exists) byte-range splits must all give the
same tables.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import zstandard
from count_oracle import Expected, OracleForm, expected_counts, snippet_choice, snippet_problem, txt_documents

from corpora_stats.count import CountConfig, count_corpora
from corpora_stats.readers import open_corpus
from corpora_stats.readers.base import DEFAULT_CHUNK_SIZE
from vlm_classdata.executors import LocalExecutor
from vlm_classdata.vocabulary import ClassVocabulary

# tench, tiger shark, tiger, hen, crane (bird), crane (machine), three-toed sloth, goose, computer mouse
WNIDS = ["n01440764", "n01491361", "n02129604", "n01514859", "n02012849", "n03126707", "n02457408",
         "n01855672", "n03793489"]
MAX_DOC = 2000
SNIPPETS = 5
CLASS_COLUMNS = ("doc_freq", "mentions", "doc_freq_all", "mentions_all", "doc_freq_clean", "mentions_clean")

WORDS = ["tiger", "tiger", "shark", "sharks", "Tiger-Shark", "TIGER", "tench", "Tenches", "tinca", "hen", "hens",
         "then", "crane", "cranes", "three-toed", "sloth", "ai", "AI", "goose", "geese", "mouse", "mice", "computer",
         "galeocerdo", "cuvieri", "the", "a", "near", "Straße", "東京", "İstanbul", "ΣΑΣ", "42", "½", "x²"]
SEPARATORS = [" ", " ", " ", ", ", "-", "_", "'", "\t", "\u00a0", "\u3000", "\x85", "\u2028", " 🐅 ", "\r",
              "\u0301 "]
EDGE_LINES = [
    b"\xff\xfe tiger shark in Latin-1 \xe9",  # not UTF-8: skipped (non_utf8), its names not counted
    b"a tiger shark \xc3",  # cut inside a UTF-8 sequence: non_utf8
    b"", b"   ", b"\t", "\x85".encode(), "\u00a0".encode(), "\u3000".encode(), b"\x1f",
    "\u2028".encode(), "\u00a0\u3000 \x85\t".encode(),  # empty or whitespace only (str.isspace): empty
    "\u200b".encode(),  # a zero-width space is not whitespace: a document without words
    b"tiger shark " * 200,  # 2,400 bytes > MAX_DOC: too_long, not counted
    b"a hen\r\r",  # one \r is dropped before the \n, the other stays in the document
    b"tiger\rshark",  # a lone \r inside a line separates words
    b"a crane, a CRANE; then a three-toed sloth",
    b"geese goose GEESE hen-house Hen",
]
EXACT_LINE = b"x" * (MAX_DOC - 12) + b" tiger shark"  # exactly MAX_DOC bytes: kept


def random_line(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(rng.randint(1, 12))).strip(" ")


def line_end(rng: random.Random) -> bytes:
    return rng.choice([b"\n", b"\n", b"\r\n"])


def build_corpus(rng: random.Random, lines: int, straddle_at: int | None) -> tuple[bytes, int | None]:
    """Corpus bytes: edge lines among ``lines`` random ones; where ``straddle_at`` is given, "a tiger shark"
    placed so that byte ``straddle_at`` falls inside "shark", then more lines; no final newline.
    → (bytes, offset of the straddling line)."""
    out = bytearray()
    every = lines // len(EDGE_LINES)
    for i in range(lines):
        if i % every == 0 and i // every < len(EDGE_LINES):  # each edge line once, spread out
            out += EDGE_LINES[i // every] + line_end(rng)
        out += random_line(rng).encode() + line_end(rng)
    out += EXACT_LINE + b"\n"  # LF only: a CRLF line of exactly MAX_DOC bytes at a chunk end is a known bug
    where = None
    if straddle_at is not None:
        while straddle_at - len(out) > 200:
            out += random_line(rng).encode() + line_end(rng)
        pad = straddle_at - 10 - len(out)  # "a tiger sh" before the boundary, "ark swims" after it
        out += b"~" * (pad - 1) + b"\n"
        where = len(out)
        out += b"a tiger shark swims\r\n"
        for _ in range(lines):
            out += random_line(rng).encode() + line_end(rng)
    out += b"the last line names a TIGER"
    return bytes(out), where


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k").subset(WNIDS)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, bytes, list[str], Counter[str], int]:
    """The 1.1 MiB corpus file: (path, bytes, oracle documents, oracle skips, straddling line offset)."""
    data, where = build_corpus(random.Random(17), 2000, DEFAULT_CHUNK_SIZE)
    assert where is not None and data[DEFAULT_CHUNK_SIZE - 10:DEFAULT_CHUNK_SIZE + 3] == b"a tiger shark"
    path = tmp_path_factory.mktemp("big") / "c.txt"
    path.write_bytes(data)
    docs, skipped = txt_documents(data, MAX_DOC)
    return path, data, docs, skipped, where


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, list[str], Counter[str]]:
    """A 10 kB corpus with every edge line: (path, oracle documents, oracle skips)."""
    data, _ = build_corpus(random.Random(5), 150, None)
    path = tmp_path_factory.mktemp("small") / "s.txt"
    path.write_bytes(data)
    docs, skipped = txt_documents(data, MAX_DOC)
    return path, docs, skipped


def count(vocab: ClassVocabulary, corpus: Path, out: Path, workers: int = 1, max_doc_bytes: int = MAX_DOC,
          split_bytes: int | None = None, **config) -> Path:
    """``count_corpora`` of one corpus named ``c`` into ``out`` with ``workers`` local processes (big files split in
    parts of ``split_bytes``)."""
    count_corpora({"c": str(corpus)}, vocab, out, CountConfig(max_doc_bytes=max_doc_bytes, **config),
                  executor=LocalExecutor(workers), show_progress=False, split_bytes=split_bytes)
    return out


def tables(out: Path) -> dict[str, object]:
    """What a count wrote for corpus ``c``: class and form tables (as rows) and the snippet lines."""
    return {"counts.csv": (out / "counts_c.csv").read_text(encoding="utf-8"),
            "counts.parquet": pl.read_parquet(out / "counts_c.parquet").rows(),
            "forms.parquet": pl.read_parquet(out / "forms_c.parquet").rows(),
            "snippets": (out / "snippets_c.jsonl").read_text(encoding="utf-8")}


def check_against_oracle(out: Path, docs: list[str], method: str,
                         shard_of: list[tuple[int, int]] | None = None, forms_policy: str = "separate") -> Expected:
    """The class and form tables and the snippets of a count are the oracle's on ``docs`` (the kept documents;
    ``shard_of[d]``: file and index within it of document ``d``, where the corpus is a folder)."""
    form_rows = pl.read_parquet(out / "forms_c.parquet").to_dicts()
    forms = [OracleForm(r["form"], r["class_id"], bool(r["flags"])) for r in form_rows]
    want = expected_counts(docs, forms, method)

    assert {(r["class_id"], r["form"]): (r["doc_freq"], r["mentions"]) for r in form_rows} == \
        {(f.class_id, f.text): (want.form_docs[f.text], want.form_mentions[f.text]) for f in forms}
    with open(out / "counts_c.csv", encoding="utf-8", newline="") as fh:
        got = {r["class_id"]: tuple(int(r[c]) for c in CLASS_COLUMNS) for r in csv.DictReader(fh)}
    headline = "all" if forms_policy == "all" else "clean"  # doc_freq and mentions: all forms, or unflagged ones
    assert got == {c: (getattr(want, f"class_docs_{headline}")[c], getattr(want, f"class_mentions_{headline}")[c],
                       want.class_docs_all[c], want.class_mentions_all[c], want.class_docs_clean[c],
                       want.class_mentions_clean[c])
                   for c in WNIDS}

    text = (out / "snippets_c.jsonl").read_text(encoding="utf-8")  # JSON keeps U+2028 and U+0085 raw: split on \n
    lines = [json.loads(x) for x in text.split("\n") if x]
    shown: dict[str, list[tuple[int, str]]] = {}
    for s in lines:
        shown.setdefault(s["class_id"], []).append((s["doc_index"], s["form"]))
        assert s["form"] in want.found[s["doc_index"]], s
        problem = snippet_problem(s["snippet"], docs[s["doc_index"]], s["form"])
        assert problem is None, (problem, s, docs[s["doc_index"]])
    assert shown == snippet_choice(want, forms, SNIPPETS, 0, docs, shard_of)
    return want


def check_read_stats(out: Path, docs: list[str], skipped: Counter[str]) -> None:
    meta = json.loads((out / "count_meta.json").read_text(encoding="utf-8"))["corpora"]["c"]
    assert meta["documents"] == len(docs)
    assert meta["bytes"] == sum(len(d.encode("utf-8")) for d in docs)
    assert meta["skipped"] == dict(sorted(skipped.items()))


@pytest.fixture(scope="module")
def big_count(big, vocab, tmp_path_factory) -> Path:
    """The wordnet count of the big txt file (the reference the copies are compared with)."""
    return count(vocab, big[0], tmp_path_factory.mktemp("big_count"))


def test_txt_counts_equal_the_oracle(big, big_count):
    _, data, docs, skipped, where = big
    want = check_against_oracle(big_count, docs, "wordnet")
    check_read_stats(big_count, docs, skipped)
    assert skipped == {"non_utf8": 2, "empty": 9, "too_long": 1}  # each edge line once
    straddling = docs.index("a tiger shark swims")  # its name crosses the 1 MiB read boundary, and is counted
    assert want.found[straddling] == {"tiger shark": 1}
    assert sum(want.class_docs_all.values()) > 1000  # the corpus names classes in most documents


def test_paper_method_counts_equal_the_oracle(big, vocab, tmp_path):
    _, _, docs, skipped, _ = big
    out = count(vocab, big[0], tmp_path / "paper", method="paper")
    want = check_against_oracle(out, docs, "paper")
    check_read_stats(out, docs, skipped)
    assert want.form_mentions["tiger"] > 0 and want.form_mentions["tiger shark"] > 0  # overlapping names counted


@pytest.mark.parametrize("forms_policy", ["all", "exclude-flagged"])
def test_forms_policies_head_the_table_with_the_oracle_counts(small, vocab, tmp_path, forms_policy):
    path, docs, skipped = small
    out = count(vocab, path, tmp_path / "out", forms=forms_policy)
    want = check_against_oracle(out, docs, "wordnet", forms_policy=forms_policy)
    assert want.class_docs_all != want.class_docs_clean  # flagged forms (crane, mouse, ai) occur: the columns differ
    check_read_stats(out, docs, skipped)


def two_parts(data: bytes, cut: int, compress) -> bytes:
    """``data`` compressed as two members/frames, cut at byte ``cut``."""
    return compress(data[:cut]) + compress(data[cut:])


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_compressed_copies_give_identical_tables(big, big_count, vocab, tmp_path, kind):
    _, data, docs, skipped, where = big
    compress = gzip.compress if kind == "gz" else zstandard.ZstdCompressor(write_checksum=True).compress
    path = tmp_path / f"c.txt.{kind}"
    path.write_bytes(two_parts(data, where + 5, compress))  # the member/frame ends inside "tiger shark"
    out = count(vocab, path, tmp_path / "out")
    assert tables(out) == tables(big_count)
    check_read_stats(out, docs, skipped)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_jsonl_and_parquet_copies_give_identical_tables(big, big_count, vocab, tmp_path, fmt):
    _, _, docs, _, _ = big
    path = tmp_path / f"c.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    else:
        pl.DataFrame({"id": range(len(docs)), "text": docs}).write_parquet(path, row_group_size=4096)
    out = count(vocab, path, tmp_path / "out", max_doc_bytes=4 * MAX_DOC)  # a JSON line is longer than its text
    assert tables(out) == tables(big_count)
    check_read_stats(out, docs, Counter())


def test_one_or_two_workers_on_a_folder_give_identical_tables_and_snippets(big, big_count, vocab, tmp_path):
    _, data, docs, skipped, _ = big
    folder = tmp_path / "parts"
    folder.mkdir()
    cuts = [0, data.index(b"\n", len(data) // 3) + 1, data.index(b"\n", 2 * len(data) // 3) + 1, len(data)]
    shard_of = []
    for i in range(3):
        part = data[cuts[i]:cuts[i + 1]]
        (folder / f"part{i}.txt").write_bytes(part)
        shard_of += [(i, d) for d in range(len(txt_documents(part, MAX_DOC)[0]))]
    one = count(vocab, folder, tmp_path / "one", workers=1)
    two = count(vocab, folder, tmp_path / "two", workers=2)
    assert tables(two) == tables(one)
    check_against_oracle(two, docs, "wordnet", shard_of)
    assert tables(two)["counts.csv"] == tables(big_count)["counts.csv"]
    check_read_stats(two, docs, skipped)


@pytest.mark.parametrize("split", [None, 64, 1000])
@pytest.mark.parametrize("fmt", ["txt", "jsonl"])
def test_byte_range_splits_of_one_file_give_identical_tables_and_snippets(small, vocab, tmp_path, fmt, split):
    path, docs, skipped = small
    if fmt == "jsonl":  # the same documents, and the same skipped lines, as JSON Lines
        path = tmp_path / "s.jsonl"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for i, d in enumerate(docs):
                fh.write(json.dumps({"text": d}, ensure_ascii=False) + ("\r\n" if i % 3 else "\n"))
                if i % 40 == 0:
                    fh.write("\n\t\n")  # two empty lines
        skipped = Counter({"empty": 2 * len(range(0, len(docs), 40))})
    limit = 4 * MAX_DOC if fmt == "jsonl" else MAX_DOC  # a JSON line is longer than its text
    base = count(vocab, path, tmp_path / "base", workers=1, max_doc_bytes=limit)
    out = count(vocab, path, tmp_path / "split", workers=2, max_doc_bytes=limit, split_bytes=split)
    assert tables(out) == tables(base)
    check_against_oracle(out, docs, "wordnet")
    check_read_stats(out, docs, skipped)


@pytest.mark.parametrize("chunk_size", [*range(1, 48), 61, 64, 100, 1000, 4096, 1 << 20])
def test_every_read_size_gives_the_oracle_lines(small, chunk_size):
    """The reader's lines do not depend on where its reads end (inside a CRLF, a UTF-8 sequence, a word)."""
    path, docs, skipped = small
    corpus = open_corpus(str(path), "txt", max_doc_bytes=MAX_DOC, chunk_size=chunk_size, batch_size=7)
    got = [t for _, batch in corpus.batches() for t in batch]
    assert got == docs
    assert dict(corpus.describe()["skipped"]) == dict(skipped)


@pytest.mark.parametrize(("data", "chunk_size"), [(b"a" * 10 + b"\r\nbbb\n", 11), (b"bbb\n" + b"c" * 10 + b"\r", 1 << 20)],
                         ids=["read-ends-inside-crlf", "last-line"])
def test_a_crlf_line_of_exactly_max_doc_bytes_is_kept(tmp_path, data, chunk_size):
    (tmp_path / "x.txt").write_bytes(data)
    corpus = open_corpus(str(tmp_path / "x.txt"), "txt", max_doc_bytes=10, chunk_size=chunk_size)
    got = [t for _, batch in corpus.batches() for t in batch]
    assert (got, dict(corpus.describe()["skipped"])) == (txt_documents(data, 10)[0], {})


def test_the_oracle_reader_on_the_line_rules():
    """The oracle's own line rules, on a file spelled out by hand."""
    data = b"one\r\ntwo\r\r\n\n \n\xff\n" + b"x" * 6 + b"\nthree"
    assert txt_documents(data, 5) == (["one", "two\r", "three"], Counter({"empty": 2, "non_utf8": 1, "too_long": 1}))
    assert txt_documents(b"", 5) == ([], Counter())
    assert txt_documents(b"\n", 5) == ([], Counter({"empty": 1}))
