"""Damaged and mixed corpora on real files: nothing readable is lost, every damaged file is named, and a folder
mixing formats is read file by file with each file's own reader."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpora_stats.readers import detect_format, open_corpus

N_LINES = 100_000


def read_all(path: Path, **kw) -> tuple[list[str], dict]:
    corpus = open_corpus(str(path), **kw)
    texts = [t for _, batch in corpus.batches() for t in batch]
    info = corpus.describe()
    assert info["documents"] == len(texts)
    return texts, info


def lines_text() -> bytes:
    return "".join(f"caption {i} of a tabby cat on a red sofa\n" for i in range(N_LINES)).encode()


def complete_lines(decoded: bytes) -> int:
    """An independent count: the whole lines among the bytes that decompress."""
    return decoded.count(b"\n")


@pytest.mark.parametrize("comp", ["gz", "zst"])
def test_truncated_compressed_file_keeps_every_complete_line_before_the_damage(tmp_path, comp):
    data = lines_text()
    packed = gzip.compress(data) if comp == "gz" else zstandard.ZstdCompressor().compress(data)
    cut = packed[: len(packed) * 7 // 10]
    path = tmp_path / f"cut.txt.{comp}"
    path.write_bytes(cut)
    if comp == "gz":
        decoded = zlib.decompressobj(wbits=31).decompress(cut)
    else:
        decoded = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    expected = complete_lines(decoded)
    assert 0 < expected < N_LINES
    texts, info = read_all(path)
    assert len(texts) == expected  # every complete line before the damage, not one more (the cut-off one)
    assert texts == [f"caption {i} of a tabby cat on a red sofa" for i in range(expected)]
    assert info["skipped"] == {"read_error": 1}
    [entry] = info["skipped_files"]
    assert entry["file"] == str(path)
    assert entry["reason"].startswith(f"truncated {'gzip' if comp == 'gz' else 'zstd'} stream")


@pytest.mark.parametrize("comp", ["gz", "zst"])
def test_whole_compressed_files_read_fully_multi_member_and_multi_frame(tmp_path, comp):
    data = lines_text()
    half = data.index(b"\n", len(data) // 2) + 1
    if comp == "gz":
        packed = gzip.compress(data[:half]) + gzip.compress(data[half:])
    else:
        z = zstandard.ZstdCompressor(write_checksum=True)
        packed = z.compress(data[:half]) + z.compress(data[half:])
    path = tmp_path / f"whole.txt.{comp}"
    path.write_bytes(packed)
    texts, info = read_all(path, chunk_size=1 << 15)
    assert len(texts) == N_LINES and info["skipped"] == {} and info["skipped_files"] == []


def test_corrupt_bytes_inside_gzip_are_named_and_earlier_lines_kept(tmp_path):
    data = lines_text()
    packed = bytearray(gzip.compress(data))
    middle = len(packed) // 2
    packed[middle:middle + 64] = b"\xff" * 64
    path = tmp_path / "bad.txt.gz"
    path.write_bytes(bytes(packed))
    texts, info = read_all(path)
    assert info["skipped"] == {"read_error": 1}
    [entry] = info["skipped_files"]
    assert entry["file"] == str(path) and entry["reason"].startswith("damaged gzip stream")
    # deflate has no per-block check: the lines before the damaged block are exact (a few garbled ones may
    # precede the error zlib reports), and nothing before it is lost
    intact = N_LINES * 4 // 10
    assert len(texts) > intact
    assert texts[:intact] == [f"caption {i} of a tabby cat on a red sofa" for i in range(intact)]


def test_corrupt_parquet_beside_a_good_one_is_named_and_the_good_one_counted(tmp_path):
    folder = tmp_path / "laion"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"PAR1" + b"\x00" * 100)  # sorts first: it decided the column
    pq.write_table(pa.table({"TEXT": ["a dog", "a cat"]}), folder / "part-1.parquet")
    texts, info = read_all(folder)
    assert texts == ["a dog", "a cat"]
    assert info["skipped"] == {"read_error": 1}
    [entry] = info["skipped_files"]
    assert entry["file"] == str(folder / "part-0.parquet") and "not a readable parquet file" in entry["reason"]


def test_parquet_with_a_damaged_row_group_keeps_the_others(tmp_path):
    path = tmp_path / "groups.parquet"
    rows = [f"caption number {i}" for i in range(300)]
    pq.write_table(pa.table({"text": rows}), path, row_group_size=100, compression="none")
    column = pq.ParquetFile(path).metadata.row_group(1).column(0)
    start = column.dictionary_page_offset or column.data_page_offset
    raw = bytearray(path.read_bytes())
    raw[start:start + 24] = b"\xff" * 24  # the page header of row group 1 no longer parses
    path.write_bytes(bytes(raw))
    texts, info = read_all(path)
    assert texts == rows[:100] + rows[200:]
    assert info["skipped"] == {"read_error": 1}
    [entry] = info["skipped_files"]
    assert entry["file"] == str(path) and "row group 1 (100 of its rows lost" in entry["reason"]


def test_unrecoverable_json_array_is_named(tmp_path):
    path = tmp_path / "broken.json"
    good = json.dumps({"conversations": [{"from": "gpt", "value": "a fox"}]})
    path.write_text("[" + good + ", {\"conversations\": [ oops ]] garbage without objects")
    texts, info = read_all(path, fmt="llava_instruct")
    assert texts == ["a fox"]
    assert info["skipped"] == {"malformed_json": 1, "unrecoverable_json": 1}
    assert info["skipped_files"][0]["file"] == str(path)


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_mixed_folder_reads_every_format(tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("txt one\ntxt two\n")
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(b'{"text": "jsonl gz"}\n'))
    (folder / "c.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": "<image>\nSay"},
                                                                  {"from": "gpt", "value": "pretrain gpt"}]}]))
    (folder / "d.json.zst").write_bytes(zstandard.ZstdCompressor().compress(json.dumps([
        {"conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"},
                           {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]}]).encode()))
    pq.write_table(pa.table({"caption": ["parquet caption"]}), folder / "sub" / "e.parquet")
    (folder / "notes.md").write_text("not a corpus")
    assert detect_format(str(folder)) == "mixed"
    corpus = open_corpus(str(folder))
    assert corpus.file_formats() == ["txt", "jsonl", "llava_pretrain", "llava_instruct", "parquet"]
    texts, info = read_all(folder)
    assert texts == ["txt one", "txt two", "jsonl gz", "pretrain gpt", "q1\na1\nq2\na2", "parquet caption"]
    assert info["skipped_files"] == [{"file": str(folder / "notes.md"),
                                      "reason": "not a corpus file type (.json, .jsonl, .parquet, .txt, .tar)"}]
    # each file alone, as count reads it, gives the same documents
    assert [t for i in range(5) for _, b in corpus.part(i).batches() for t in b] == texts
    # a forced format reads its own files and names the others, never silently
    texts, info = read_all(folder, fmt="txt")
    assert texts == ["txt one", "txt two"] and len(info["skipped_files"]) == 5


def test_a_tar_folder_stays_webdataset_and_names_the_files_it_does_not_read(tmp_path):
    folder = tmp_path / "wds"
    folder.mkdir()
    _tar(folder / "00000.tar", [("0.txt", b"tar caption"), ("0.jpg", b"\xff\xd8")])
    pq.write_table(pa.table({"caption": ["tar caption"]}), folder / "00000.parquet")  # img2dataset metadata
    assert detect_format(str(folder)) == "webdataset"
    texts, info = read_all(folder)
    assert texts == ["tar caption"]  # the metadata parquet repeats the captions: not counted twice
    assert [e["file"] for e in info["skipped_files"]] == [str(folder / "00000.parquet")]


def test_a_folder_of_one_format_keeps_its_name_and_reads_json_files_holding_jsonl(tmp_path):
    folder = tmp_path / "lines"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "from jsonl"}\n')
    (folder / "b.json").write_text('{"text": "jsonl saved as json"}\n{"text": "second"}\n')
    corpus = open_corpus(str(folder))
    assert corpus.format == "jsonl" and corpus.file_formats() == ["jsonl", "jsonl"]
    assert read_all(folder)[0] == ["from jsonl", "jsonl saved as json", "second"]
