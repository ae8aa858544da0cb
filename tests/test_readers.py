"""corpora_stats.readers on real files: every format (plain, gzip, zstd), bad input counted, batching, memory."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpora_stats.readers import FORMATS, ReadStats, detect_format, open_corpus
from vlm_classdata.errors import UserError

COMPRESSIONS = ["", ".gz", ".zst"]


def write(path: Path, data: bytes | str, comp: str = "") -> Path:
    """Write ``data`` to ``path + comp``, compressed as the suffix says."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if comp == ".gz":
        data = gzip.compress(data)
    elif comp == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    out = path.with_name(path.name + comp)
    out.write_bytes(data)
    return out


def read_all(path: Path | str, **kw) -> tuple[list[str], dict]:
    corpus = open_corpus(str(path), **kw)
    texts: list[str] = []
    expected_first = 0
    for first, batch in corpus.batches():
        assert first == expected_first
        expected_first += len(batch)
        texts += batch
    info = corpus.describe()
    assert info["documents"] == len(texts)
    assert info["bytes"] == sum(len(t.encode()) for t in texts)
    return texts, info


def conv(*turns: tuple[str, str], i: int = 0) -> dict:
    return {"id": f"{i:09d}", "image": f"{i:05d}/{i:09d}.jpg",
            "conversations": [{"from": who, "value": value} for who, value in turns]}


PRETRAIN = [conv(("human", "<image>\nWrite a terse but informative summary of the picture."),
                 ("gpt", f"a photo of a tabby cat number {i} on a sofa"), i=i) for i in range(7)]
INSTRUCT = [
    conv(("human", "What is the man holding?\n<image>"), ("gpt", "A red umbrella."),
         ("human", "Why?"), ("gpt", "It is raining."), i=1),
    conv(("human", "<image>\nDescribe the image."), ("gpt", "Two dogs play in the snow."), i=2),
    conv(("human", "Is there a café?"), ("gpt", "Yes, on the left."), ("human", "<image>"), i=3),
]


# ----- txt ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_txt_lines_plain_and_compressed(tmp_path, comp):
    data = (b"first line\r\nsecond\n\n   \nthird caf\xc3\xa9 \xe2\x80\x94 ok\nbad \xff\xfe bytes\n"
            b"half \xc3 char\nlast without newline")
    path = write(tmp_path / "corpus.txt", data, comp)
    assert detect_format(str(path)) == "txt"
    texts, info = read_all(path)
    assert texts == ["first line", "second", "third café — ok", "last without newline"]
    assert info["skipped"] == {"empty": 2, "non_utf8": 2}
    assert info["format"] == "txt" and info["path"] == str(path)


@pytest.mark.parametrize("fmt", ["txt", "jsonl"])
def test_huge_line_is_counted_and_neighbours_survive(tmp_path, fmt):
    limit = 100_000

    def line(text: str) -> bytes:
        return (json.dumps({"caption": text}) if fmt == "jsonl" else text).encode() + b"\n"

    overhead = len(line("")) - 1
    exact = "e" * (limit - overhead)  # exactly max_doc_bytes bytes on its line
    over = "o" * (limit - overhead + 1)
    data = line("before") + line("x" * 3_000_000) + line(exact) + line(over) + line("after") + line("y" * 300_000)
    path = write(tmp_path / f"big.{fmt}", data)
    texts, info = read_all(path, fmt=fmt, max_doc_bytes=limit, chunk_size=65_536)
    assert texts == ["before", exact, "after"]
    assert info["skipped"] == {"too_long": 3}


# ----- jsonl --------------------------------------------------------------------------------------
JSONL_LINES = [
    b'{"TEXT": "LAION alt text of a golden retriever", "URL": "http://x/1.jpg"}',
    b'{"caption": "cc3m caption of a mountain lake"}',
    b'{"text": "plain text field"}',
    b'{"Caption": "capitalised"}',
    b'{"txt": "webdataset style"}',
    b'{"url": "http://x/2.jpg"}',
    b'{"TEXT": null, "caption": "null TEXT falls back to caption"}',
    b'{"TEXT": "broken line", ',
    b"",
    b'{"TEXT": "invalid \xff\xfe utf-8"}',
    b"[1, 2, 3]",
    b'{"conversations": [{"from": "human", "value": "<image>\\nWhat is it?"}, {"from": "gpt", "value": "A kite."}]}',
    b'{"TEXT": 42}',
    b'{"TEXT": "lone surrogate \\udc80 escape"}',
    b'{"TEXT": "emoji \\ud83d\\ude00 pair"}',
]


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_jsonl_auto_field_plain_and_compressed(tmp_path, comp):
    path = write(tmp_path / "meta.jsonl", b"\n".join(JSONL_LINES) + b"\n", comp)
    assert detect_format(str(path)) == "jsonl"
    texts, info = read_all(path)
    assert texts == ["LAION alt text of a golden retriever", "cc3m caption of a mountain lake", "plain text field",
                     "capitalised", "webdataset style", "null TEXT falls back to caption",
                     "What is it?\nA kite.", "emoji \U0001f600 pair"]
    assert info["skipped"] == {"empty": 1, "malformed_json": 1, "no_text": 3, "non_utf8": 2}


def test_jsonl_explicit_field_and_turns(tmp_path):
    path = write(tmp_path / "meta.jsonl", b"\n".join(JSONL_LINES))
    texts, info = read_all(path, text_field="caption")
    assert texts == ["cc3m caption of a mountain lake", "null TEXT falls back to caption"]
    assert info["text_field"] == "caption"
    texts, _ = read_all(path, turns="gpt")
    assert "A kite." in texts and "What is it?\nA kite." not in texts


def test_jsonl_saved_as_json_is_detected(tmp_path):
    path = write(tmp_path / "captions.json", "\n".join(json.dumps({"caption": f"c{i}"}) for i in range(3)))
    assert detect_format(str(path)) == "jsonl"
    assert read_all(path)[0] == ["c0", "c1", "c2"]


# ----- LLaVA JSON arrays --------------------------------------------------------------------------
@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_llava_pretrain_plain_and_compressed(tmp_path, comp):
    path = write(tmp_path / "blip_laion_cc_sbu_558k.json", json.dumps(PRETRAIN), comp)
    assert detect_format(str(path)) == "llava_pretrain"
    texts, info = read_all(path, chunk_size=100)
    assert texts == [f"a photo of a tabby cat number {i} on a sofa" for i in range(7)]
    assert info["skipped"] == {} and info["turns"] == "gpt" and info["text_field"] == "conversations"


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_llava_instruct_turns(tmp_path, comp):
    path = write(tmp_path / "llava_v1_5_mix665k.json", json.dumps(INSTRUCT, indent=2, ensure_ascii=False), comp)
    assert detect_format(str(path)) == "llava_instruct"
    assert read_all(path)[0] == [
        "What is the man holding?\nA red umbrella.\nWhy?\nIt is raining.",
        "Describe the image.\nTwo dogs play in the snow.",
        "Is there a café?\nYes, on the left."]
    assert read_all(path, turns="human", chunk_size=5)[0] == [  # multi-byte characters cut between chunks
        "What is the man holding?\nWhy?", "Describe the image.", "Is there a café?"]
    assert read_all(path, turns="gpt")[0] == [
        "A red umbrella.\nIt is raining.", "Two dogs play in the snow.", "Yes, on the left."]
    # the pretrain reading of the same file takes the gpt turns whatever ``turns`` says
    assert read_all(path, fmt="llava_pretrain", turns="human")[0] == read_all(path, turns="gpt")[0]


@pytest.mark.parametrize("indent", [None, 1])
@pytest.mark.parametrize("chunk_size", [7, 1 << 20])
def test_llava_malformed_element_in_the_middle(tmp_path, indent, chunk_size):
    elements = [json.dumps(e, indent=indent) for e in PRETRAIN]
    elements[3] = elements[3].replace('"id": "000000003"', '"id": 000000003 oops')
    elements[5] = elements[5].replace('"value": "a photo', '"value": a photo')
    path = write(tmp_path / "pretrain.json", "[\n" + ",\n".join(elements) + "\n]\n")
    texts, info = read_all(path, fmt="llava_pretrain", chunk_size=chunk_size)
    assert texts == [f"a photo of a tabby cat number {i} on a sofa" for i in (0, 1, 2, 4, 6)]
    assert info["skipped"] == {"malformed_json": 2}


def test_llava_truncated_file_is_unrecoverable_not_fatal(tmp_path):
    data = json.dumps(PRETRAIN)
    path = write(tmp_path / "truncated.json", data[: data.index('{"id": "000000004"') + 40])
    texts, info = read_all(path, fmt="llava_pretrain", chunk_size=64)
    assert texts == [f"a photo of a tabby cat number {i} on a sofa" for i in range(4)]
    assert info["skipped"] == {"malformed_json": 1, "unrecoverable_json": 1}


def test_llava_garbage_after_bad_element_stops_the_file(tmp_path):
    data = json.dumps(PRETRAIN[:2])[:-1] + ', {"id": broken} garbage that never parses ]'
    texts, info = read_all(write(tmp_path / "g.json", data), fmt="llava_instruct")
    assert len(texts) == 2
    assert info["skipped"] == {"malformed_json": 1, "unrecoverable_json": 1}


def test_llava_too_long_and_non_utf8_elements(tmp_path):
    limit = 2_000
    parts = [json.dumps(PRETRAIN[0]).encode(),
             json.dumps(conv(("human", "<image>"), ("gpt", "z" * 50_000), i=8)).encode(),  # > 2 x limit JSON
             json.dumps(conv(("human", "<image>"), ("gpt", "w" * 3_000), i=9)).encode(),  # text > limit
             json.dumps(conv(("human", "<image>"), ("gpt", "PLACEHOLDER"), i=10)).encode().replace(
                 b"PLACEHOLDER", b"caf\xe9 latin-1"),
             json.dumps(conv(("human", "<image>"), ("gpt", "   "), i=11)).encode(),
             json.dumps({"id": "no conversation"}).encode(),
             json.dumps(PRETRAIN[1]).encode()]
    path = write(tmp_path / "mixed.json", b"[" + b", ".join(parts) + b"]")
    texts, info = read_all(path, fmt="llava_pretrain", max_doc_bytes=limit, chunk_size=512)
    assert texts == [PRETRAIN[0]["conversations"][1]["value"], PRETRAIN[1]["conversations"][1]["value"]]
    assert info["skipped"] == {"too_long": 2, "non_utf8": 1, "empty": 1, "no_text": 1}


def test_deeply_nested_element_does_not_crash(tmp_path):
    data = "[" + json.dumps(PRETRAIN[0]) + ", " + "[" * 100_000 + "]" * 100_000 + ", " + json.dumps(PRETRAIN[1]) + "]"
    texts, info = read_all(write(tmp_path / "deep.json", data), fmt="llava_pretrain", max_doc_bytes=1_000_000)
    assert len(texts) == 2 and set(info["skipped"]) <= {"malformed_json", "no_text"}


# ----- parquet ------------------------------------------------------------------------------------
def test_parquet_text_column_nulls_and_folder_sharding(tmp_path):
    folder = tmp_path / "laion"
    folder.mkdir()
    pq.write_table(pa.table({"URL": ["u1", "u2", "u3"], "TEXT": ["a dog on grass", None, "two cats"],
                             "similarity": [0.3, 0.2, 0.4]}), folder / "part-00001.parquet")
    pq.write_table(pa.table({"URL": ["u4", "u5"], "TEXT": ["", "a red car"]}), folder / "part-00000.parquet",
                   row_group_size=1)
    assert detect_format(str(folder)) == "parquet"
    assert detect_format(str(folder / "part-00000.parquet")) == "parquet"
    corpus = open_corpus(str(folder), batch_size=2)
    assert [Path(f).name for f in corpus.files()] == ["part-00000.parquet", "part-00001.parquet"]
    texts, info = read_all(folder, batch_size=2)
    assert texts == ["a red car", "a dog on grass", "two cats"]
    assert info["skipped"] == {"empty": 1, "no_text": 1} and info["text_field"] == "TEXT"
    # each file opened alone with the same options gives the same documents in the same order
    shards = [read_all(f, fmt="parquet", batch_size=2)[0] for f in corpus.files()]
    assert sum(shards, []) == texts


def test_parquet_caption_column_and_explicit_field(tmp_path):
    path = tmp_path / "cc.parquet"
    pq.write_table(pa.table({"caption": ["c1", "c2"], "alt": ["a1", None]}), path)
    assert read_all(path)[0] == ["c1", "c2"]
    texts, info = read_all(path, text_field="alt")
    assert texts == ["a1"] and info["skipped"] == {"no_text": 1}
    with pytest.raises(UserError, match="no text column 'nope'"):
        open_corpus(str(path), text_field="nope")
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"url": ["u"]}), bare)
    with pytest.raises(UserError, match="pass text_field"):
        open_corpus(str(bare))


def test_parquet_binary_column_with_invalid_utf8(tmp_path):
    path = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"text": pa.array([b"ok bytes", b"\xff bad", None], pa.binary())}), path)
    texts, info = read_all(path)
    assert texts == ["ok bytes"] and info["skipped"] == {"non_utf8": 1, "no_text": 1}


# ----- Hugging Face -------------------------------------------------------------------------------
def test_hf_saved_dataset_shards(tmp_path):
    import datasets

    texts = [f"sentence number {i}" for i in range(10)]
    ds = datasets.Dataset.from_dict({"text": texts[:9] + [None], "label": list(range(10))})
    ds.save_to_disk(str(tmp_path / "ds"), num_shards=2)
    assert detect_format(str(tmp_path / "ds")) == "hf"
    corpus = open_corpus(str(tmp_path / "ds"), batch_size=4)
    assert len(corpus.files()) == 2 and all(f.endswith(".arrow") for f in corpus.files())
    got, info = read_all(tmp_path / "ds", batch_size=4)
    assert got == texts[:9] and info["skipped"] == {"no_text": 1} and info["text_field"] == "text"
    assert sum((read_all(f, fmt="hf")[0] for f in corpus.files()), []) == got


def test_hf_dataset_dict_and_parquet_data_folder(tmp_path):
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"caption": ["t1", "t2"]}),
                               "test": datasets.Dataset.from_dict({"caption": ["s1"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_all(tmp_path / "dd")[0] == ["t1", "t2", "s1"]
    hub = tmp_path / "hub_snapshot"
    (hub / "data").mkdir(parents=True)
    pq.write_table(pa.table({"TEXT": ["h1", "h2", None]}), hub / "data" / "train-00000-of-00001.parquet")
    assert detect_format(str(hub)) == "hf"
    texts, info = read_all(hub)
    assert texts == ["h1", "h2"] and info["skipped"] == {"no_text": 1}
    assert open_corpus(str(hub)).files() == [str(hub)]


# ----- WebDataset ---------------------------------------------------------------------------------
def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> None:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_txt_members(tmp_path):
    shards = tmp_path / "wds"
    shards.mkdir()
    _tar(shards / "shard-000001.tar", [("000010.jpg", b"\xff\xd8jpeg"), ("000010.txt", b"third caption\n"),
                                       ("000010.json", b"{}")])
    _tar(shards / "shard-000000.tar", [("000000.jpg", b"\xff\xd8"), ("000000.txt", b"first caption"),
                                       ("000001.txt", b"bad \xff"), ("000002.txt", b"x" * 5000),
                                       ("000003.txt", b"second caption")])
    _tar(shards / "shard-000002.tar.gz", [("000020.txt", b"gzipped shard caption")], mode="w:gz")
    assert detect_format(str(shards)) == "webdataset"
    corpus = open_corpus(str(shards), max_doc_bytes=1000)
    assert [Path(f).name for f in corpus.files()] == ["shard-000000.tar", "shard-000001.tar",
                                                      "shard-000002.tar.gz"]
    texts, info = read_all(shards, max_doc_bytes=1000)
    assert texts == ["first caption", "second caption", "third caption", "gzipped shard caption"]
    assert info["skipped"] == {"non_utf8": 1, "too_long": 1}
    assert read_all(corpus.files()[1], fmt="webdataset")[0] == ["third caption"]


def test_damaged_archives_and_gzip_are_counted(tmp_path):
    shards = tmp_path / "wds"
    shards.mkdir()
    _tar(shards / "a.tar", [(f"{i:03d}.txt", f"caption {i}".encode()) for i in range(50)])
    whole = (shards / "a.tar").read_bytes()
    (shards / "a.tar").write_bytes(whole[:2048 + 512])  # cut inside the member list
    texts, info = read_all(shards, fmt="webdataset")
    assert texts[:2] == ["caption 0", "caption 1"] and len(texts) < 50
    assert info["skipped"] == {"read_error": 1}
    gz = gzip.compress("".join(f"line {i}\n" for i in range(20_000)).encode())
    path = write(tmp_path / "cut.txt", gz[: len(gz) // 2])
    path = path.rename(tmp_path / "cut.txt.gz")
    texts, info = read_all(path, chunk_size=4096)
    assert texts[:3] == ["line 0", "line 1", "line 2"] and 0 < len(texts) < 20_000
    assert texts == [f"line {i}" for i in range(len(texts))]  # the cut-off last line is not a document
    assert info["skipped"] == {"read_error": 1}


# ----- WordNet glosses ----------------------------------------------------------------------------
def test_wordnet_glosses_demo_corpus():
    corpus = open_corpus("wordnet:glosses", batch_size=50_000)
    assert detect_format("wordnet:glosses") == "wordnet_glosses" and corpus.files() == ["wordnet:glosses"]
    batches = list(corpus.batches())
    texts = [t for _, b in batches for t in b]
    assert [first for first, _ in batches] == list(range(0, len(texts), 50_000))
    assert len(texts) > 100_000
    assert texts[0].startswith("that which is perceived or known or inferred to have its own distinct")
    dog = "a member of the genus Canis (probably descended from the common wolf) that has been domesticated"
    i = next(i for i, t in enumerate(texts) if t.startswith(dog))
    assert texts[i + 1] == "the dog barked all night"  # dog.n.01's example sentence follows its definition
    assert "Don't run--you'll be out of breath" in texts[i:]  # run.v.01: verbs come after nouns
    assert corpus.describe()["documents"] == len(texts) and corpus.describe()["skipped"] == {}


# ----- detection, batching, errors ----------------------------------------------------------------
def test_detect_format_table(tmp_path):
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "x"}\n'))
    write(tmp_path / "b.txt", "x\n", ".gz")
    pq.write_table(pa.table({"TEXT": ["x"]}), tmp_path / "c.parquet")
    write(tmp_path / "d.json", json.dumps(PRETRAIN + INSTRUCT))
    write(tmp_path / "e.json", json.dumps(PRETRAIN), ".zst")
    write(tmp_path / "noext", json.dumps(INSTRUCT))
    (tmp_path / "hfinfo").mkdir()
    (tmp_path / "hfinfo" / "dataset_info.json").write_text("{}")
    expected = {"a.jsonl.zst": "jsonl", "b.txt.gz": "txt", "c.parquet": "parquet", "d.json": "llava_instruct",
                "e.json.zst": "llava_pretrain", "noext": "llava_instruct", "hfinfo": "hf"}
    assert {n: detect_format(str(tmp_path / n)) for n in expected} == expected
    assert detect_format("wordnet:glosses") == "wordnet_glosses"
    (tmp_path / "unknown.bin").write_bytes(b"\x00\x01binary")
    with pytest.raises(UserError, match="cannot tell the format"):
        detect_format(str(tmp_path / "unknown.bin"))
    with pytest.raises(UserError, match="does not exist"):
        detect_format(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("batch_size", [1, 3, 7, 1000])
def test_batches_consecutive_whatever_the_batch_size(tmp_path, batch_size):
    folder = tmp_path / "txts"
    folder.mkdir()
    write(folder / "0.txt", "".join(f"doc {i}\n" if i % 5 else "\n" for i in range(23)))
    write(folder / "1.txt", "".join(f"doc {i}\n" for i in range(23, 40)), ".gz")
    corpus = open_corpus(str(folder), batch_size=batch_size)
    batches = list(corpus.batches())
    texts = [t for _, b in batches for t in b]
    assert texts == [f"doc {i}" for i in range(40) if i >= 23 or i % 5]
    assert [first for first, _ in batches] == list(range(0, len(texts), batch_size))
    assert all(len(b) == batch_size for _, b in batches[:-1]) and 0 < len(batches[-1][1]) <= batch_size
    assert corpus.stats.skipped == {"empty": 5} and corpus.stats.documents == len(texts)
    again = list(corpus.batches())  # a second pass restarts the indices and the counts
    assert again == batches and corpus.stats.documents == len(texts)


def test_user_errors(tmp_path):
    path = write(tmp_path / "x.txt", "x\n")
    with pytest.raises(UserError, match="unknown corpus format"):
        open_corpus(str(path), fmt="csv")
    with pytest.raises(UserError, match="turns"):
        open_corpus(str(path), turns="assistant")
    with pytest.raises(UserError, match="positive"):
        open_corpus(str(path), batch_size=0)
    with pytest.raises(UserError, match="does not exist"):
        open_corpus(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="wordnet"):
        open_corpus("wordnet:lemmas")
    assert set(FORMATS) >= {"llava_pretrain", "llava_instruct", "jsonl", "parquet", "txt", "hf", "webdataset"}
    assert ReadStats().skipped == {} and ReadStats().documents == 0


# ----- bounded memory -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["txt", "jsonl.zst", "json.gz"])
def test_memory_stays_bounded_on_a_multi_megabyte_file(tmp_path, kind):
    n = 120_000
    if kind == "txt":
        data = "".join(f"caption number {i} of a photo with some words in it\n" for i in range(n))
    elif kind == "jsonl.zst":
        data = "".join(json.dumps({"caption": f"caption number {i} of a photo"}) + "\n" for i in range(n))
    else:
        data = json.dumps([conv(("human", "<image>\nDescribe."), ("gpt", f"caption {i}"), i=i) for i in range(n // 3)])
    base, _, comp = kind.partition(".")
    path = write(tmp_path / f"big.{base}", data, f".{comp}" if comp else "")
    raw_size = len(data.encode())
    assert raw_size > 5_000_000
    tracemalloc.start()
    try:
        documents = 0
        for _, batch in open_corpus(str(path), chunk_size=1 << 16, max_doc_bytes=1 << 16, batch_size=500).batches():
            documents += len(batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert documents == (n if base != "json" else n // 3)
    assert peak < 1_500_000, f"peak {peak} bytes while reading {raw_size} bytes"
