"""Filters over verification sidecars: rule parsing, votes, sequential/alone counts, filtered copies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlm_classdata.atomic import dumps_compact
from vlm_classdata.errors import UserError
from vlm_classdata.verification.filtered_build import run_filter
from vlm_classdata.verification.filtered_files import filter_files, read_ids
from vlm_classdata.verification.items import load_items
from vlm_classdata.verification.rules import FilterResult, Rule, apply_rules, parse_rule, votes
from vlm_classdata.verification.sidecars import load_sidecars

SIDECAR_SCHEMA = {"sample_id": pl.String, "pass": pl.String, "model": pl.String, "status": pl.String,
                  "error": pl.String, "correct": pl.Boolean}


def write_sidecar(verify: Path, pass_name: str, alias: str, rows: list[tuple],
                  extra: dict | None = None) -> Path:
    """rows: (sample_id, status, correct); ``extra``: column -> (dtype, values)."""
    verify.mkdir(parents=True, exist_ok=True)
    data = {
        "sample_id": [r[0] for r in rows], "pass": [pass_name] * len(rows),
        "model": [f"org/{alias}"] * len(rows),
        "status": [r[1] for r in rows], "error": [None if r[1] == "ok" else "timeout" for r in rows],
        "correct": [r[2] for r in rows],
    }
    schema = dict(SIDECAR_SCHEMA)
    for name, (dtype, values) in (extra or {}).items():
        data[name] = values
        schema[name] = dtype
    path = verify / f"{pass_name}.{alias}.parquet"
    pl.DataFrame(data, schema=schema).write_parquet(path)
    return path


# label_check by three models (s4: a errors, b has no row; s5: c has no row; s6 only c ran)
LABEL_CHECK = {
    "a": [("s1", "ok", True), ("s2", "ok", True), ("s3", "ok", False), ("s4", "error", None),
          ("s5", "ok", True)],
    "b": [("s1", "ok", True), ("s2", "ok", False), ("s3", "error", None), ("s5", "ok", True)],
    "c": [("s1", "ok", True), ("s2", "ok", True), ("s3", "ok", False), ("s4", "ok", True),
          ("s6", "ok", True)],
}
# blind by two models: x answers s2 without the image, y answers s4; y errors on s5 and never saw s6
BLIND = {
    "x": [("s1", "ok", False), ("s2", "ok", True), ("s3", "ok", False), ("s4", "ok", False),
          ("s5", "ok", False), ("s6", "ok", False)],
    "y": [("s1", "ok", False), ("s2", "ok", False), ("s3", "ok", False), ("s4", "ok", True),
          ("s5", "error", None)],
}


@pytest.fixture
def verify_dir(tmp_path: Path) -> Path:
    verify = tmp_path / "verify"
    for alias, rows in LABEL_CHECK.items():
        write_sidecar(verify, "label_check", alias, rows)
    for alias, rows in BLIND.items():
        write_sidecar(verify, "blind", alias, rows)
    # rank: in_top5 is the column that matters; an errored row with in_top5 true must not count
    write_sidecar(verify, "rank", "a", [("s1", "ok", False), ("s2", "ok", False), ("s3", "error", None)],
                  {"in_top5": (pl.Boolean, [True, False, True]), "rank_pos": (pl.Int64, [3, 9, None])})
    write_sidecar(verify, "rank", "b", [("s1", "ok", False), ("s2", "ok", False), ("s3", "ok", False)],
                  {"in_top5": (pl.Boolean, [False, True, False]), "rank_pos": (pl.Int64, [7, 2, 8])})
    # files that are not sidecars are ignored
    (verify / "notes.parquet").write_bytes(b"not parquet at all")
    (verify / ".blind.z.parquet.tmp123").write_bytes(b"partial")
    return verify


def as_dict(frame: pl.DataFrame) -> dict[str, tuple]:
    return {r["sample_id"]: (r["n_true"], r["n_models"], r["n_error"], r["n_missing"], r["match"])
            for r in frame.iter_rows(named=True)}


# --- parse_rule ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected, normalised", [
    ("drop:blind", Rule("drop", "blind", "correct", ">=1", 1), "drop:blind.correct>=1"),
    ("keep:label_check>=2", Rule("keep", "label_check", "correct", ">=2", 2), "keep:label_check.correct>=2"),
    ("keep:mcq=all", Rule("keep", "mcq", "correct", "all", None), "keep:mcq.correct=all"),
    ("keep:mcq=any", Rule("keep", "mcq", "correct", ">=1", 1), "keep:mcq.correct>=1"),
    ("keep:rank.in_top5>=1", Rule("keep", "rank", "in_top5", ">=1", 1), "keep:rank.in_top5>=1"),
    ("  drop:my-pass.correct>=03 ", Rule("drop", "my-pass", "correct", ">=3", 3), "drop:my-pass.correct>=3"),
    ("keep:rank.in_top5=all", Rule("keep", "rank", "in_top5", "all", None), "keep:rank.in_top5=all"),
])
def test_parse_rule_variants(text, expected, normalised):
    rule = parse_rule(text)
    assert rule == expected
    assert rule.text == normalised
    assert parse_rule(rule.text) == rule  # the normalised text parses back to the same rule


@pytest.mark.parametrize("text, fragment", [
    ("blind", "expected ACTION:PASS"),
    ("", "expected ACTION:PASS"),
    ("remove:blind", "unknown action 'remove'"),
    ("Keep:blind", "unknown action 'Keep'"),
    ("keep:", "bad pass name ''"),
    ("keep:>=2", "bad pass name ''"),
    ("keep:bl ind", "bad pass name 'bl ind'"),
    ("keep:blind.", "empty column name"),
    ("keep:blind.1st", "bad column name '1st'"),
    ("keep:blind.correct.x", "bad column name 'correct.x'"),
    ("keep:blind>=0", "at least 1"),
    ("keep:blind>=-2", "at least 1"),
    ("keep:blind>=two", "not a whole number"),
    ("keep:blind>=", "not a whole number"),
    ("keep:blind>2", "bad quantifier '>2'"),
    ("keep:blind=some", "bad quantifier '=some'"),
    ("keep:blind==all", "bad quantifier '==all'"),
])
def test_parse_rule_errors(text, fragment):
    with pytest.raises(UserError) as info:
        parse_rule(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


# --- sidecars and votes ----------------------------------------------------------------------------------

def test_load_sidecars_groups_by_pass_and_model(verify_dir):
    sidecars = load_sidecars(verify_dir)
    assert {p: sorted(m) for p, m in sidecars.items()} == {
        "blind": ["x", "y"], "label_check": ["a", "b", "c"], "rank": ["a", "b"]}
    assert sidecars["label_check"]["b"]["sample_id"].to_list() == ["s1", "s2", "s3", "s5"]


def test_load_sidecar_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_sidecars(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blind.a.parquet").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable Parquet"):
        load_sidecars(bad)
    dup = tmp_path / "dup"
    write_sidecar(dup, "blind", "a", [("s1", "ok", True), ("s1", "error", None)])
    with pytest.raises(UserError, match="repeats sample id 's1'"):
        load_sidecars(dup)
    wrong = tmp_path / "wrong"
    write_sidecar(wrong, "mcq", "a", [("s1", "ok", True)])
    (wrong / "mcq.a.parquet").rename(wrong / "blind.a.parquet")
    with pytest.raises(UserError, match="named for pass 'blind' but has rows of pass 'mcq'"):
        load_sidecars(wrong)
    nostatus = tmp_path / "nostatus"
    nostatus.mkdir()
    pl.DataFrame({"sample_id": ["s1"], "correct": [True]}).write_parquet(nostatus / "blind.a.parquet")
    with pytest.raises(UserError, match="no 'status' column"):
        load_sidecars(nostatus)


def test_votes_three_models_with_errors_and_missing_rows(verify_dir):
    sidecars = load_sidecars(verify_dir)
    got = as_dict(votes(parse_rule("keep:label_check>=2"), sidecars))
    #            n_true, n_models, n_error, n_missing, match
    assert got == {
        "s1": (3, 3, 0, 0, True),
        "s2": (2, 3, 0, 0, True),
        "s3": (0, 3, 1, 0, False),
        "s4": (1, 3, 1, 1, False),
        "s5": (2, 3, 0, 1, True),
        "s6": (1, 3, 0, 2, False),
    }
    frame = votes(parse_rule("keep:label_check"), sidecars)
    assert frame["sample_id"].to_list() == ["s1", "s2", "s3", "s4", "s5", "s6"]  # sorted
    assert {"sample_id", "n_true", "n_models", "n_error", "n_missing", "match"} <= set(frame.columns)


@pytest.mark.parametrize("rule, matching", [
    ("keep:label_check>=2", ["s1", "s2", "s5"]),
    ("keep:label_check>=3", ["s1"]),
    ("keep:label_check=all", ["s1"]),
    ("keep:label_check=any", ["s1", "s2", "s4", "s5", "s6"]),
    ("keep:label_check", ["s1", "s2", "s4", "s5", "s6"]),
    ("drop:blind", ["s2", "s4"]),
    ("keep:rank.in_top5>=1", ["s1", "s2"]),  # s1 by a, s2 by b; s3: a says true but its status is error
    ("keep:rank.in_top5=all", []),
    ("keep:rank.correct>=1", []),
])
def test_votes_quantifiers(verify_dir, rule, matching):
    frame = votes(parse_rule(rule), load_sidecars(verify_dir))
    assert frame.filter(pl.col("match"))["sample_id"].to_list() == matching


def test_votes_all_null_column_counts_as_errors(tmp_path):
    verify = tmp_path / "v"
    write_sidecar(verify, "mcq", "good", [("q1", "ok", True), ("q2", "ok", False)])
    # every row errored: the column was written without a type (polars Null)
    pl.DataFrame({"sample_id": ["q1", "q2"], "status": ["error", "error"], "correct": [None, None]}
                 ).write_parquet(verify / "mcq.broken.parquet")
    sidecars = load_sidecars(verify)
    assert sidecars["mcq"]["broken"].schema["correct"] == pl.Null
    assert as_dict(votes(parse_rule("keep:mcq=all"), sidecars)) == {
        "q1": (1, 2, 1, 0, False), "q2": (0, 2, 1, 0, False)}
    assert as_dict(votes(parse_rule("keep:mcq"), sidecars))["q1"][-1] is True


@pytest.mark.parametrize("rule, fragment", [
    ("keep:mcq", "no sidecar for pass 'mcq' (passes with sidecars: blind, label_check, rank)"),
    ("keep:blind.in_top5", "sidecar blind.x has no column 'in_top5'"),
    ("keep:rank.rank_pos>=1", "column 'rank_pos' of sidecar rank.a is Int64, not boolean"),
    ("keep:rank.error", "not boolean"),
    ("keep:label_check>=4", "needs 4 models but only 3 ran pass 'label_check' (a, b, c)"),
    ("drop:blind>=3", "needs 3 models but only 2 ran pass 'blind'"),
])
def test_rules_checked_against_sidecars(verify_dir, rule, fragment):
    sidecars = load_sidecars(verify_dir)
    with pytest.raises(UserError) as info:
        votes(parse_rule(rule), sidecars)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError):
        apply_rules(["s1"], [parse_rule(rule)], sidecars)


# --- apply_rules -----------------------------------------------------------------------------------------

INPUT = ["s5", "s1", "s7", "s3", "s2", "s6", "s4", "s1"]  # s7 has no result anywhere; s1 repeated


def test_apply_rules_sequential_and_alone_counts(verify_dir):
    sidecars = load_sidecars(verify_dir)
    rules = [parse_rule("drop:blind"), parse_rule("keep:label_check>=2")]
    result = apply_rules(INPUT, rules, sidecars)
    assert result.kept == ["s5", "s1"]
    assert result.dropped == {
        "s2": "drop:blind.correct>=1", "s4": "drop:blind.correct>=1",
        "s7": "keep:label_check.correct>=2", "s3": "keep:label_check.correct>=2",
        "s6": "keep:label_check.correct>=2",
    }
    assert result.report == {
        "input": 7, "kept": 2, "dropped": 5,
        "rules": [
            # blind matches s2 (x) and s4 (y); y errored on s5; s6 lacks y, s7 lacks both
            {"rule": "drop:blind.correct>=1", "dropped": 2, "dropped_alone": 2, "models": ["x", "y"],
             "samples_with_errors": 1, "samples_missing": 2},
            # >=2 holds for s1, s2, s5: alone it drops s3, s4, s6, s7; after blind, s4 is already gone
            {"rule": "keep:label_check.correct>=2", "dropped": 3, "dropped_alone": 4,
             "models": ["a", "b", "c"], "samples_with_errors": 2, "samples_missing": 4},
        ],
    }
    # the other order: same "alone" counts, different sequential ones, same survivors
    swapped = apply_rules(INPUT, rules[::-1], sidecars)
    assert swapped.kept == ["s5", "s1"]
    assert [(r["dropped"], r["dropped_alone"]) for r in swapped.report["rules"]] == [(4, 4), (1, 2)]
    assert swapped.dropped["s4"] == "keep:label_check.correct>=2"
    assert swapped.dropped["s2"] == "drop:blind.correct>=1"


def test_apply_rules_edge_cases(verify_dir):
    sidecars = load_sidecars(verify_dir)
    none = apply_rules([], [parse_rule("keep:label_check=all")], sidecars)
    assert (none.kept, none.dropped, none.report["input"]) == ([], {}, 0)
    assert none.report["rules"][0]["dropped"] == 0
    no_rules = apply_rules(["s2", "s9"], [], sidecars)
    assert no_rules.kept == ["s2", "s9"]
    assert no_rules.report == {"input": 2, "kept": 2, "dropped": 0, "rules": []}
    with pytest.raises(UserError, match="none of the 2 input samples has a result"):
        apply_rules(["zz1", "zz2"], [parse_rule("drop:blind")], sidecars)
    keep_all = apply_rules(["s1", "s2", "s3"], [parse_rule("keep:label_check=all")], sidecars)
    assert keep_all.kept == ["s1"] and set(keep_all.dropped) == {"s2", "s3"}


# --- filtered copies -------------------------------------------------------------------------------------

def json_array_bytes(rows: list[dict]) -> bytes:
    """What builders.writers.jsonfiles.JsonArrayWriter writes."""
    return ("[\n" + ",\n".join(dumps_compact(r) for r in rows) + "\n]\n").encode() if rows else b"[]\n"


def make_build(base: Path) -> dict[str, Path]:
    """A build folder with a LLaVA JSON array, a question JSONL and a Hugging Face Parquet shard."""
    llava = [{"id": f"s{i}", "image": f"img/s{i}.jpg",
              "conversations": [{"from": "human", "value": "<image>\nWhat is this? é"},
                                {"from": "gpt", "value": f"class {i}"}]} for i in range(1, 6)]
    (base / "llava").mkdir(parents=True)
    (base / "llava" / "train.json").write_bytes(json_array_bytes(llava))
    questions = [{"question_id": f"q{i}", "image": f"img/q{i}.jpg", "text": "Q?", "score": 0.1 * i}
                 for i in range(1, 5)]
    questions.append({"image": "img/x.jpg", "text": "no id"})  # id: row000004 (0-based position)
    lines = ([dumps_compact(q) for q in questions[:2]] + ["", "{broken json"]
             + [dumps_compact(q) for q in questions[2:]])
    (base / "eval").mkdir()
    (base / "eval" / "val.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    image_type = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    features = b'{"info": {"features": {"label": {"_type": "ClassLabel"}}}}'
    fields = [pa.field("image", image_type), pa.field("id", pa.string()), pa.field("label", pa.int64())]
    schema = pa.schema(fields, metadata={b"huggingface": features, b"extra": b"kept"})
    ids = [f"p{i}" for i in range(1, 8)]
    table = pa.Table.from_pylist(
        [{"image": {"bytes": bytes([i]) * 50, "path": f"{sid}.jpg"}, "id": sid, "label": i}
         for i, sid in enumerate(ids, 1)], schema=schema)
    (base / "hf" / "data").mkdir(parents=True)
    shard = base / "hf" / "data" / "train-00000-of-00001.parquet"
    pq.write_table(table, shard, row_group_size=3, compression={"image.bytes": "NONE", "image.path": "ZSTD",
                                                                   "id": "ZSTD", "label": "ZSTD"})
    return {"json": base / "llava" / "train.json", "jsonl": base / "eval" / "val.jsonl", "parquet": shard}


ALL_IDS = ([f"s{i}" for i in range(1, 6)] + ["q1", "q2", "q3", "q4", "row000004"]
           + [f"p{i}" for i in range(1, 8)])


def make_verify(verify: Path) -> None:
    """Two label_check models; ids some model gets right: s1 s3 s5 q2 q4 row000004 p2 p3 p7."""
    a_true = {"s1", "s3", "q2", "p2", "p7"}
    b_true = {"s5", "q4", "row000004", "p3"}
    write_sidecar(verify, "label_check", "a", [(s, "ok", s in a_true) for s in ALL_IDS])
    # b errors on s2 and has no row for p1
    write_sidecar(verify, "label_check", "b", [(s, "error", None) if s == "s2" else (s, "ok", s in b_true)
                                               for s in ALL_IDS if s != "p1"])


def test_ids_match_the_items_loader(tmp_path):
    """Sidecars are keyed by load_items' ids: the filter must give every row the same id (positions count
    only parsed rows, blank and broken lines do not)."""
    files = make_build(tmp_path / "build")
    assert read_ids(files["jsonl"]) == [it.sample_id for it in load_items(files["jsonl"]).items]
    assert read_ids(files["jsonl"]) == ["q1", "q2", "q3", "q4", "row000004"]
    assert read_ids(files["json"]) == ["s1", "s2", "s3", "s4", "s5"]
    assert read_ids(files["parquet"]) == [f"p{i}" for i in range(1, 8)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_filter_writes_filtered_copies(tmp_path):
    base = tmp_path / "build"
    files = make_build(base)
    make_verify(tmp_path / "verify")
    before = {k: digest(p) for k, p in files.items()}
    out = tmp_path / "filtered"
    report = run_filter([files["json"], Path("eval/val.jsonl"), files["parquet"]], base, tmp_path / "verify",
                        ["keep:label_check"], out)
    assert {k: digest(p) for k, p in files.items()} == before  # inputs untouched

    # JSON array: kept rows in order, bytes as the json_array writer writes them
    src = json.loads(files["json"].read_text(encoding="utf-8"))
    got_json = out / "llava" / "train.json"
    assert got_json.read_bytes() == json_array_bytes([r for r in src if r["id"] in {"s1", "s3", "s5"}])
    # JSONL: blank line ignored, broken line left out, id-less row kept by its positional id
    got_lines = (out / "eval" / "val.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line).get("question_id", "none") for line in got_lines] == ["q2", "q4", "none"]
    assert got_lines[0] == dumps_compact({"question_id": "q2", "image": "img/q2.jpg", "text": "Q?",
                                          "score": 0.2})
    # Parquet: same schema and metadata, exact ids in order, write settings kept
    got_pq = out / "hf" / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(got_pq)
    source_schema = pq.read_schema(files["parquet"])
    assert table.schema.equals(source_schema, check_metadata=True)
    assert table.schema.metadata[b"extra"] == b"kept"
    assert table.column("id").to_pylist() == ["p2", "p3", "p7"]
    assert table.column("label").to_pylist() == [2, 3, 7]
    assert table.column("image").to_pylist()[0] == {"bytes": bytes([2]) * 50, "path": "p2.jpg"}
    meta = pq.ParquetFile(got_pq).metadata
    codecs = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression
              for i in range(meta.num_columns)}
    assert codecs == {"image.bytes": "UNCOMPRESSED", "image.path": "ZSTD", "id": "ZSTD", "label": "ZSTD"}
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3]

    assert report["files"] == {
        "eval/val.jsonl": {"rows": 6, "kept": 3, "bad_rows": 1},
        "hf/data/train-00000-of-00001.parquet": {"rows": 7, "kept": 3},
        "llava/train.json": {"rows": 5, "kept": 3},
    }
    assert (report["input"], report["kept"], report["dropped"]) == (17, 9, 8)
    assert report["rules"] == [{"rule": "keep:label_check.correct>=1", "dropped": 8, "dropped_alone": 8,
                                "models": ["a", "b"], "samples_with_errors": 1, "samples_missing": 1}]
    assert report["rules_text"] == ["keep:label_check"]
    assert json.loads((out / "filter_report.json").read_text(encoding="utf-8")) == report
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_filter_files_all_kept_is_byte_identical_and_none_kept_is_empty(tmp_path):
    base = tmp_path / "build"
    files = make_build(base)
    counts = filter_files([files["json"], files["parquet"]], tmp_path / "all", base,
                          FilterResult(kept=ALL_IDS))
    assert (tmp_path / "all" / "llava" / "train.json").read_bytes() == files["json"].read_bytes()
    assert counts["llava/train.json"] == {"rows": 5, "kept": 5}
    assert pq.read_table(tmp_path / "all" / "hf" / "data" / "train-00000-of-00001.parquet").equals(
        pq.read_table(files["parquet"]))
    filter_files(list(files.values()), tmp_path / "none", base, FilterResult(kept=[]))
    assert (tmp_path / "none" / "llava" / "train.json").read_bytes() == b"[]\n"
    assert (tmp_path / "none" / "eval" / "val.jsonl").read_bytes() == b""
    empty = pq.read_table(tmp_path / "none" / "hf" / "data" / "train-00000-of-00001.parquet")
    assert empty.num_rows == 0 and empty.schema.equals(pq.read_schema(files["parquet"]), check_metadata=True)


def test_filter_errors(tmp_path):
    base = tmp_path / "build"
    files = make_build(base)
    make_verify(tmp_path / "verify")
    result = FilterResult(kept=["s1"])
    with pytest.raises(UserError, match="is the base folder"):
        filter_files([files["json"]], base, base, result)
    with pytest.raises(UserError, match="is the base folder"):
        run_filter([files["json"]], base, tmp_path / "verify", ["keep:label_check"], base / ".")
    (base / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"only \.json \(array\), \.jsonl and \.parquet"):
        filter_files([base / "notes.txt"], tmp_path / "o", base, result)
    outside = tmp_path / "other.json"
    outside.write_text("[]")
    with pytest.raises(UserError, match="not under the base folder"):
        filter_files([outside], tmp_path / "o", base, result)
    (base / "obj.json").write_text('{"id": "s1"}')
    with pytest.raises(UserError, match="expected a JSON array"):
        filter_files([base / "obj.json"], tmp_path / "o", base, result)
    noid = base / "noid.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), noid)
    with pytest.raises(UserError, match="no id column"):
        filter_files([noid], tmp_path / "o", base, result)
    with pytest.raises(UserError, match="not found"):
        run_filter([Path("missing.json")], base, tmp_path / "verify", ["keep:label_check"], tmp_path / "o")
    with pytest.raises(UserError, match="unknown action"):
        run_filter([files["json"]], base, tmp_path / "verify", ["maybe:label_check"], tmp_path / "o")
    with pytest.raises(UserError, match="no sidecar for pass 'blind'"):
        run_filter([files["json"]], base, tmp_path / "verify", ["drop:blind"], tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written when a rule or input is wrong


def test_run_filter_is_deterministic(tmp_path):
    base = tmp_path / "build"
    files = make_build(base)
    make_verify(tmp_path / "verify")
    rules = ["keep:label_check", "drop:label_check=all"]
    outs = [tmp_path / "out1", tmp_path / "out2"]
    reports = [run_filter(list(files.values()), base, tmp_path / "verify", rules, o) for o in outs]
    assert reports[0] == reports[1]
    assert reports[0]["rules"][1]["dropped"] == 0  # no id is true for both a and b
    for rel in ["filter_report.json", "llava/train.json", "eval/val.jsonl",
                "hf/data/train-00000-of-00001.parquet"]:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    # re-running into the same folder replaces the copies with identical bytes
    run_filter(list(files.values()), base, tmp_path / "verify", rules, outs[0])
    assert (outs[0] / "filter_report.json").read_bytes() == (outs[1] / "filter_report.json").read_bytes()
