"""The compiled counting engine and the byte-range split of one file (more semantics: test_count_semantics.py)."""

from __future__ import annotations

import gzip
import json

import pytest
from corpora_stats._engine import FormIndex, Scanner, split_lines, valid_line

from corpora_stats.count import CountConfig, count_corpora
from corpora_stats.readers import open_corpus
from vlm_classdata.executors import LocalExecutor
from vlm_classdata.vocabulary import ClassVocabulary

FORMS = ["tiger shark", "tiger", "hen"]  # pattern ids 0, 1, 2


def scan(data: bytes, overlapping: bool = False) -> Scanner:
    index = FormIndex(FORMS, [(0, 0, False), (1, 1, False), (2, 2, False)], 3)
    scanner = Scanner(index, overlapping, 2, 0)
    scanner.count_lines(data, 0, 100)
    return scanner


def test_lines_crlf_no_final_newline_and_bad_bytes():
    s = scan(b"a Tiger-Shark\r\nthe hen\r\n\xff tiger\n \t\r\nTIGER shark, then hen")
    assert (s.documents, s.non_utf8, s.empty, s.too_long) == (3, 1, 1, 0)
    assert s.pattern_mentions.tolist() == [2, 0, 2]  # "then" is not "hen"; the bad line counts nothing
    assert s.class_docs_all.tolist() == [2, 0, 2]


def test_overlapping_counts_every_occurrence():
    assert scan(b"tiger shark", overlapping=True).pattern_mentions.tolist() == [1, 1, 0]


def test_line_rules_are_shared_with_the_readers():
    texts, keys, counts = split_lines(b"ab\r\n\n" + b"x" * 101 + b"\n\xc3(\nok", 10, 100)
    assert (texts, keys) == (["ab", "ok"], [10, 10 + 4 + 1 + 102 + 3])
    assert counts == {"too_long": 1, "non_utf8": 1, "empty": 1, "bytes": 4}
    assert not valid_line(b"\xed\xa0\x80") and not valid_line(b"\xc0\xaf") and valid_line("é€😀".encode())


def test_a_file_splits_at_line_starts_and_every_line_is_read_once(tmp_path):
    lines = [f"line {i} a tiger shark swims" for i in range(200)]
    path = tmp_path / "c.txt"
    path.write_text("\r\n".join(lines))  # CRLF, no final newline
    corpus = open_corpus(str(path))
    units = corpus.units(100)
    spans = [span for _, span in units]
    assert len(spans) > 10 and spans[0].start == 0 and spans[-1].stop == path.stat().st_size
    data = path.read_bytes()
    assert all(a.stop == b.start and data[b.start - 1:b.start] == b"\n" for a, b in zip(spans, spans[1:], strict=False))
    read = [t for _, span in units for block in corpus.part(0, span).texts() for t in block.texts]
    assert read == lines
    assert corpus.units(None) == [(0, None)] and corpus.units(10 ** 9) == [(0, None)]


@pytest.mark.parametrize("split", [7, 33, 64])
def test_forms_straddling_split_points_are_counted_once(tmp_path, split):
    vocab = ClassVocabulary.load("imagenet1k")
    lines = [("x" * (i % 13)) + " a tiger shark and a great white shark" for i in range(120)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    outs = {}
    for name, kw in {"whole": {}, "split": {"executor": LocalExecutor(2), "split_bytes": split}}.items():
        out = tmp_path / name
        count_corpora({"t": str(tmp_path / "c.txt"), "j": str(tmp_path / "c.jsonl")}, vocab, out,
                      CountConfig(snippets=2), show_progress=False, **kw)
        outs[name] = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".jsonl", ".parquet")}
    assert outs["split"] == outs["whole"]
    assert b"n01491361,tiger shark,120,120" in outs["whole"]["counts_t.csv"]


def test_compressed_files_are_read_whole(tmp_path):
    with gzip.open(tmp_path / "c.txt.gz", "wt") as fh:
        fh.write("a tiger\n" * 1000)
    assert open_corpus(str(tmp_path / "c.txt.gz")).units(64) == [(0, None)]


def _square(item: tuple[int, int]) -> int:
    offset, x = item
    return offset + x * x


def test_map_threads_runs_every_job_once_with_the_context():
    out = sorted(LocalExecutor(2).map_threads(_square, list(range(20)), context=100))
    assert out == [100 + x * x for x in range(20)]


def test_two_workers_on_one_txt_file_count_on_threads_and_agree(tmp_path, monkeypatch):
    # a split txt file runs on threads in this process (no process pool), with the same counts as one worker
    vocab = ClassVocabulary.load("imagenet1k")
    (tmp_path / "c.txt").write_text("".join(f"{i} a tiger shark and a hen\n" for i in range(3000)))
    one = tmp_path / "one"
    count_corpora({"c": str(tmp_path / "c.txt")}, vocab, one, CountConfig(), show_progress=False)

    def no_pool(*_args, **_kwargs):
        raise AssertionError("a process pool was used for txt units")

    monkeypatch.setattr(LocalExecutor, "map", no_pool)
    two = tmp_path / "two"
    count_corpora({"c": str(tmp_path / "c.txt")}, vocab, two, CountConfig(), executor=LocalExecutor(2),
                  show_progress=False, split_bytes=4096)
    assert (one / "counts_c.csv").read_bytes() == (two / "counts_c.csv").read_bytes()
    assert (one / "snippets_c.jsonl").read_bytes() == (two / "snippets_c.jsonl").read_bytes()


@pytest.mark.parametrize("kind", ["string", "large_string", "binary", "large_binary"])
def test_parquet_columns_read_from_arrow_buffers_count_like_python_values(tmp_path, kind):
    import pyarrow as pa  # heavy: only the parquet tests need it
    import pyarrow.parquet as pq  # heavy: as above

    vocab = ClassVocabulary.load("imagenet1k")
    values = ["a tiger shark", None, "", "  \u3000", "x" * 300, "Tiger-Shark and a hen", "goose"] * 40
    raw = [None if v is None else v.encode() for v in values]
    if kind.endswith("binary"):
        raw[3] = b"\xff tiger shark"  # not UTF-8: skipped, not counted
    column = pa.array(raw, type=getattr(pa, kind)()) if kind.endswith("binary") else \
        pa.array([None if r is None else r.decode() for r in raw], type=getattr(pa, kind)())
    pq.write_table(pa.table({"text": column}), tmp_path / "c.parquet", row_group_size=50)
    metas = []
    for name in ("engine", "python"):
        out = tmp_path / name
        if name == "python":  # the same rows through the Python path: the reader's own conversion
            corpus = open_corpus(str(tmp_path / "c.parquet"), max_doc_bytes=200)
            texts = [t for block in corpus.texts() for t in block.texts]
            metas.append((corpus.describe()["documents"], dict(corpus.describe()["skipped"]), len(texts)))
            continue
        meta = count_corpora({"c": str(tmp_path / "c.parquet")}, vocab, out,
                             CountConfig(max_doc_bytes=200, snippets=2), show_progress=False)
        c = meta["corpora"]["c"]
        metas.append((c["documents"], c["skipped"], c["documents"]))
    assert metas[0] == metas[1]
    assert b"n01491361,tiger shark,80,80" in (tmp_path / "engine" / "counts_c.csv").read_bytes()


def test_count_arrow_reads_a_sliced_array_from_its_offset():
    import pyarrow as pa  # heavy: only the parquet tests need it

    index = FormIndex(FORMS, [(0, 0, False), (1, 1, False), (2, 2, False)], 3)
    whole = pa.array(["hen", "tiger shark", None, "tiger", "a hen"])
    scanner = Scanner(index, False, 0, 0)
    scanner.count_arrow(whole.slice(1, 3), 1, 100)
    assert scanner.pattern_mentions.tolist() == [1, 1, 0] and (scanner.documents, scanner.no_text) == (2, 1)
