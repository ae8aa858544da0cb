"""The targeted loop: download → build → the ``targeted`` section of the build's manifest, and the
per-class table (doc_freq, mined, downloaded, failed, kept, failure reasons)."""

from __future__ import annotations

from pathlib import Path

from builders.targeted.build import build, check_extra_args
from builders.targeted.download import download_claimed
from builders.targeted.errors import TargetedError
from builders.targeted.mined import Mined, load_mined
from builders.targeted.options import LoopOptions
from builders.targeted.state import claim_out
from vlm_classdata.records.build_manifest import BuildManifest


def class_table(section: dict) -> str:
    """The per-class table ``run`` prints."""
    doc_freq = {c.get("class_id"): c.get("doc_freq") for c in section["mine"].get("classes", []) if isinstance(c, dict)}
    rows = [("class_id", "class_name", "doc_freq", "mined", "downloaded", "failed", "kept", "failure reasons")]
    dl = section["download"]
    for cid, info in dl["classes"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in info["failed"].items()) or "-"
        df = doc_freq.get(cid)
        rows.append((cid, info["class_name"], "-" if df is None else str(df), str(info["mined"]),
                     str(info["downloaded"]), str(sum(info["failed"].values())), str(section["kept"].get(cid, 0)),
                     reasons))
    t = dl["totals"]
    rows.append(("total", "", "", str(t["mined"]), str(t["downloaded"]), str(t["failed"]),
                 str(sum(section["kept"].values())),
                 ", ".join(f"{k} {v}" for k, v in t["failed_reasons"].items()) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    right = {2, 3, 4, 5, 6}
    lines = []
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells + [r[-1]]).rstrip())
    return "\n".join(lines)


def run_loop(options: LoopOptions) -> dict:
    """Download, build, then add the ``targeted`` section (mine report, download account, kept per class) to
    ``OUT/build/manifest.json`` (atomically); print a per-class table; return the manifest."""
    mined = load_mined(options.mined)  # fail fast, before any process starts
    check_extra_args(options.build.extra_args)  # now, not after a long download
    options.download.validate()
    out = Path(options.out).expanduser()
    with claim_out(out, mined):
        return _run_claimed(mined, out, options)


def _run_claimed(mined: Mined, out: Path, options: LoopOptions) -> dict:
    """:func:`run_loop` under OUT's run lock."""
    dl = download_claimed(mined, out, options.download, options.progress)
    if dl["totals"]["downloaded"] == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in dl["totals"]["failed_reasons"].items())
        raise TargetedError(f"none of the {dl['totals']['mined']} mined URLs could be downloaded ({reasons}); "
                            "nothing to build")
    manifest = build(mined, out, options.build, options.progress)
    written = {}
    for info in manifest["splits"].values():
        for cid, n in info.get("class_counts", {}).items():
            written[cid] = written.get(cid, 0) + n
    section = {"mine": mined.report, "download": {k: v for k, v in dl.items() if k != "run"},
               "kept": {cid: int(written.get(cid, 0)) for cid in mined.mined}}
    manifest["targeted"] = section
    path = out / "build" / "manifest.json"
    BuildManifest.model_validate(manifest).write(path)
    print(class_table(section))
    print(f"  manifest   {path}")
    return manifest
