"""The light install: the core wheel (``pip install .``, no extras, made by scripts/setup.sh in ``.venv-core``)
runs the core commands without torch / transformers / img2dataset, a command that needs an extra says which
in one line, and every third-party import of the packages is a declared dependency (deptry).

The core-environment tests run each command from a temporary folder without ``PYTHONPATH``, so they exercise the
installed wheel (its package data and compiled counting engine), not this checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser under its old name
    tomllib = pytest.importorskip("tomli")

from consumers import REPO, clean_env, consumers_python, core_python, in_ci

from vlm_classdata import extras
from vlm_classdata.errors import UserError, run_cli

HEAVY = ("torch", "transformers", "tokenizers", "safetensors", "img2dataset", "ray", "webdataset", "trl",
         "accelerate")
PACKAGES = ("vlm_classdata", "corpora_stats", "builders", "imagewikiqa", "cards")


def run_core(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ARGS`` in the core environment, from ``cwd`` (never the checkout)."""
    return subprocess.run([core_python(), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def core_build(tmp_path_factory) -> Path:
    """The embedded ImageNet sample built by the core environment's ``builders.imagenet_qa``."""
    work = tmp_path_factory.mktemp("core")
    res = run_core("-m", "builders.imagenet_qa", "--out", "build", "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    return work / "build"


# ----- the core environment -------------------------------------------------------------------------------
def test_core_env_holds_no_heavy_package(tmp_path):
    res = run_core("-m", "pip", "list", "--format=json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    installed = {p["name"].lower().replace("_", "-"): p for p in json.loads(res.stdout)}
    assert "vlm-classdata" in installed
    assert "editable_project_location" not in installed["vlm-classdata"]  # a wheel, not a link to the checkout
    assert sorted(h for h in HEAVY if h in installed) == []


def test_core_env_imports_every_package_from_its_wheel(tmp_path):
    code = ("import sys, json, sysconfig, builders, cards, corpora_stats, imagewikiqa, vlm_classdata,"
            " corpora_stats._engine as engine;"
            "print(json.dumps({'site': sysconfig.get_paths()['purelib'], 'files': [m.__file__ for m in (builders,"
            " cards, corpora_stats, imagewikiqa, vlm_classdata, engine)],"
            " 'heavy': sorted(set(sys.modules) & set(sys.argv[1:]))}))")
    res = run_core("-c", code, *HEAVY, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["heavy"] == []
    assert all(f.startswith(got["site"] + "/") for f in got["files"]), got  # the wheel's copy, not the checkout
    assert got["files"][-1].endswith(".so")  # the compiled counting engine was built into the wheel


def test_core_env_builds_the_embedded_sample(core_build):
    manifest = json.loads((core_build / "manifest.json").read_text())
    outputs = json.loads((REPO / "builders" / "outputs.json").read_text())
    written = set(manifest["outputs"])
    assert written and written <= set(outputs)
    parquets = sorted(core_build.rglob("*.parquet"))
    assert parquets, "no parquet output"
    assert all(pq.read_metadata(p).num_rows > 0 for p in parquets)
    tars = sorted(core_build.rglob("*.tar"))
    assert tars and all(t.stat().st_size > 0 for t in tars)  # WebDataset shards, written without webdataset


def test_core_env_counts_a_caption_file(tmp_path):
    (tmp_path / "classes.txt").write_text("n01440764 tench\nn02129604 tiger\n")
    (tmp_path / "captions.txt").write_text("a tench in the pond\ntwo tenches\na tiger sleeps\nnothing\n")
    res = run_core("-m", "corpora_stats", "count", "--classes", "classes.txt", "--corpus", "c=captions.txt",
                   "--out", "freq", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    table = pq.read_table(tmp_path / "freq" / "counts_c.parquet").to_pylist()
    assert {r["class_id"]: r["doc_freq"] for r in table} == {"n01440764": 2, "n02129604": 1}


@pytest.mark.parametrize("command, what, extra, missing", [
    (["builders.verify", "run", "--build", "{build}", "--model", "{model}", "--quiet"], "builders.verify", "vlm",
     "torch"),
    (["builders.imagenet_qa", "--out", "{out}", "--executor", "ray", "--quiet"], "--executor ray", "ray", "ray"),
], ids=["verify-vlm", "executor-ray"])
def test_core_env_names_the_missing_extra_in_one_line(core_build, tmp_path, command, what, extra, missing):
    (tmp_path / "model").mkdir()
    paths = {"build": str(core_build), "model": str(tmp_path / "model"), "out": str(tmp_path / "out")}
    res = run_core("-m", *(part.format(**paths) for part in command), cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {what} needs the [{extra}] extra: "
                               f"pip install 'vlm-classdata[{extra}]' (missing: {missing}"), lines
    assert not (core_build / "verify").exists() and not (tmp_path / "out").exists()  # refused before any work


# ----- the consumers environment ---------------------------------------------------------------------------
def test_consumers_env_has_webdataset_1_lmms_eval_wids_and_this_checkout(tmp_path):
    code = ("import json, importlib.metadata as md, webdataset, wids, lmms_eval, trl, vlm_classdata;"
            "print(json.dumps({'webdataset': webdataset.__version__, 'lmms_eval': md.version('lmms-eval'),"
            " 'project': vlm_classdata.__file__}))")
    res = subprocess.run([consumers_python(), "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["webdataset"].startswith("1.") and got["lmms_eval"] == "0.7.3"
    assert got["project"] == str(REPO / "vlm_classdata" / "__init__.py")  # the editable checkout, via .venv


# ----- the helper, in this environment --------------------------------------------------------------------
def test_require_names_the_extra_and_the_missing_modules(monkeypatch, capsys):
    monkeypatch.setitem(extras.EXTRAS, "demo", ("json", "vlmcd_no_such_module", "vlmcd_no_such_module.sub"))
    assert extras.missing_modules("demo") == ["vlmcd_no_such_module"]
    with pytest.raises(UserError, match=r"^the demo needs the \[demo\] extra: pip install 'vlm-classdata\[demo\]' "
                                        r"\(missing: vlmcd_no_such_module\)$"):
        extras.require("demo", "the demo")

    def main(argv):
        extras.require("demo")

    assert run_cli(main, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the [demo] extra" in err
    with pytest.raises(ValueError, match="unknown extra"):
        extras.require("nonsense")


def test_every_extra_is_declared_and_installed_in_the_development_environment():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.EXTRAS) <= set(declared)
    assert {e: extras.missing_modules(e) for e in extras.EXTRAS} == {e: [] for e in extras.EXTRAS}


# ----- declared dependencies -------------------------------------------------------------------------------
def deptry(root: Path) -> subprocess.CompletedProcess:
    """``deptry .`` in ``root`` with this environment's packages; skipped (failed under CI) without deptry."""
    probe = subprocess.run([sys.executable, "-c", "import deptry"], capture_output=True)
    if probe.returncode != 0:
        reason = "deptry is not installed here (it comes with the dev extra: scripts/setup.sh)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return subprocess.run([sys.executable, "-m", "deptry", "--no-ansi", "."], cwd=root, capture_output=True,
                          text=True, timeout=120)


def test_deptry_finds_every_import_declared_and_every_dependency_used():
    res = deptry(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No dependency issues found" in res.stdout + res.stderr


def test_deptry_with_our_settings_catches_an_undeclared_and_an_unused_dependency(tmp_path):
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["deptry"]
    settings = "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items() if not isinstance(v, dict))
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "probe"\nversion = "0"\ndependencies = ["polars", "pillow"]\n'
        f"[tool.deptry]\n{settings}\n[tool.deptry.package_module_name_map]\npillow = \"PIL\"\n")
    (tmp_path / "vlm_classdata").mkdir()
    (tmp_path / "vlm_classdata" / "a.py").write_text("import polars\nimport yaml\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("import torch\n")  # tests are the dev side: not reported
    res = deptry(tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "DEP003 'yaml' imported but it is a transitive dependency" in out  # installed, not declared
    assert "DEP002 'pillow' defined as a dependency but not used in the codebase" in out
    assert "torch" not in out
