"""Targeted data for under-exposed classes: download a mined URL list with img2dataset, then build.

    python -m corpora_stats mine ... --out MINED                   # picks classes, writes MINED/urls.parquet
    python -m builders.targeted --mined MINED --out OUT            # downloads, builds, reports per class
    python -m builders.targeted --mined MINED --out OUT            # again: resumes, nothing is fetched twice

The MINED folder (written by ``corpora_stats mine``): ``urls.parquet`` (url, caption, class_id, class_name,
matched_form, corpus, row; URLs unique), ``classes.json`` (the vocabulary the counts were made with) and
``mine_report.json`` (the rule, the counts it read, per-class doc_freq/matched/mined).

OUT holds:

- ``shards/`` — img2dataset's webdataset output: per shard ``NNNNN.tar`` (successful samples: jpg, txt, json
  with ``class_id``/``class_name``/``matched_form``), ``NNNNN.parquet`` (every input row with its
  ``status``/``error_message``) and ``NNNNN_stats.json`` (written last: img2dataset's ``incremental`` mode
  skips a shard that has it). Finished tars are rewritten once in key order with zeroed header times, so a
  shard's bytes do not depend on download completion order.
- ``.stages/shard-NNNNN.done.json`` — a shard is done (:class:`vlm_classdata.stages.Stages`) only when its parquet lists
  each URL of its slice of ``urls.parquet`` exactly once and its tar holds one image per downloaded row; a
  shard img2dataset finished that fails this check (a sample it dropped, a tar cut off by a full disk) is
  removed, the run stops with :class:`DownloadIncomplete`, and the next run fetches that shard again.
- the run lock (``vlm_classdata.stages.open_out``): one run per OUT; temporary files of killed runs are removed.
- ``download.json`` — per class: mined, downloaded, failed by reason; the settings that shaped the shards.
- ``build/`` — ``python -m builders.imagenet_qa --source webdataset`` on the shards; its ``manifest.json``
  gains a ``targeted`` section: ``{"mine": <mine_report.json>, "download": <download.json>, "kept": {...}}``.
- ``img2dataset.log`` — img2dataset's own output when progress is off.

Per class, ``mined == downloaded + sum(failed)`` is checked against the shards' parquet files (each mined URL
must appear exactly once); a failed shard stops the run with :class:`DownloadIncomplete` (run it again).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import signal
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from builders.sources.wds import _KEY_EXT  # WebDataset's split of a member name into key and extension
from vlm_classdata.atomic import atomic_path, commit, discard, write_json_atomic
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.records.build_manifest import BuildManifest
from vlm_classdata.stages import RunLock, Stages, file_listing, fingerprint, open_out
from vlm_classdata.vocabulary import ClassVocabulary

DEFAULT_OUTPUTS = "llava,hf,eval_open,mcq"
RESIZE_MODES = ("border", "keep_ratio", "keep_ratio_largest", "center_crop", "no")
SAVED_COLUMNS = ["class_id", "class_name", "matched_form"]
ENCODE_FORMAT = "jpg"
STATE_FILE = ".targeted_state.json"
STAGES_DIR = ".stages"  # completion markers of the shards (vlm_classdata.stages), beside shards/ (img2dataset reads *.json there)
#: builders CLI options this module sets itself (not allowed in ``extra_args``)
_OWN_BUILD_OPTIONS = ("--source", "--root", "--classes", "--label-field", "--split-name", "--out", "--outputs",
                      "--seed", "--overwrite")
_STATS_RE = re.compile(r"^(\d+)_stats\.json$")


class TargetedError(RuntimeError):
    """The download cannot be accounted for or built from (a lost or duplicated row, nothing downloaded)."""


class DownloadIncomplete(TargetedError):
    """Some img2dataset shards did not finish; running the same command again resumes them."""


# ----- the MINED folder --------------------------------------------------------------------------------
@dataclass
class Mined:
    """A validated MINED folder."""

    path: Path
    urls_file: Path
    vocabulary: ClassVocabulary
    vocabulary_json: dict
    report: dict
    url_class: dict[str, str]  # url -> class_id
    mined: dict[str, int]  # class_id -> rows, in vocabulary order
    urls_sha256: str

    @property
    def rows(self) -> int:
        return len(self.url_class)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_mined(mined_dir: str | os.PathLike) -> Mined:
    """Read and check a MINED folder; any problem is one :class:`UserError` line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpora_stats.mine import URL_COLUMNS as MINED_COLUMNS  # the MINED contract, written there

    root = Path(mined_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"MINED folder {str(mined_dir)!r} not found")
    urls_file = root / "urls.parquet"
    if not urls_file.is_file():
        raise UserError(f"{root}: no urls.parquet (write it with python -m corpora_stats mine)")
    try:
        table = pq.read_table(urls_file)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{urls_file}: not a readable parquet file ({str(exc).splitlines()[0][:120]})") from None
    missing = [c for c in MINED_COLUMNS if c not in table.column_names]
    if missing:
        raise UserError(f"{urls_file}: missing column(s) {', '.join(missing)}; expected {', '.join(MINED_COLUMNS)}")
    for col in MINED_COLUMNS:
        typ = table.schema.field(col).type
        ok = pa.types.is_integer(typ) if col == "row" else (pa.types.is_string(typ) or pa.types.is_large_string(typ))
        if not ok:
            raise UserError(f"{urls_file}: column {col!r} has type {typ}, expected {'int64' if col == 'row' else 'string'}")
    if table.num_rows == 0:
        raise UserError(f"{urls_file}: no rows to download")
    urls = table.column("url").to_pylist()
    class_ids = table.column("class_id").to_pylist()
    if any(not u for u in urls):
        raise UserError(f"{urls_file}: {sum(1 for u in urls if not u)} row(s) without a url")
    if any(not c for c in class_ids):
        raise UserError(f"{urls_file}: {sum(1 for c in class_ids if not c)} row(s) without a class_id")
    dup = [u for u, n in Counter(urls).items() if n > 1]
    if dup:
        raise UserError(f"{urls_file}: {len(dup)} duplicate url(s), e.g. {dup[0]}; URLs must be unique")

    classes_file = root / "classes.json"
    data = read_user_json(classes_file, "MINED class list")
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise UserError(f"{classes_file}: expected the vocabulary JSON {{\"dataset\", \"classes\": [...]}}")
    try:
        vocab = ClassVocabulary.from_json(data)
    except (KeyError, TypeError) as exc:
        raise UserError(f"{classes_file}: malformed class entry ({exc})") from None
    unknown = sorted({c for c in class_ids if c not in vocab})
    if unknown:
        raise UserError(f"{urls_file}: {len(unknown)} class id(s) not in classes.json, e.g. {unknown[0]!r}")
    report = read_user_json(root / "mine_report.json", "MINED report")
    if not isinstance(report, dict):
        raise UserError(f"{root / 'mine_report.json'}: expected a JSON object")
    counts = Counter(class_ids)
    chosen = {c.get("class_id") for c in report.get("classes") or [] if isinstance(c, dict)}
    mined = {cid: counts[cid] for cid in vocab.ids if cid in counts or cid in chosen}  # chosen, none found: 0
    return Mined(root, urls_file, vocab, data, report, dict(zip(urls, class_ids, strict=True)), mined,
                 _sha256_file(urls_file))


# ----- failure reasons ---------------------------------------------------------------------------------
_REASONS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"HTTP Error (\d{3})"), "http_{0}"),
    (re.compile(r"timed out|timeout", re.I), "timeout"),
    (re.compile(r"decod", re.I), "decode_error"),
    (re.compile(r"connection refused", re.I), "connection_refused"),
    (re.compile(r"connection reset|remote end closed|remotedisconnected|broken pipe|connection aborted", re.I),
     "connection_closed"),
    (re.compile(r"name or service not known|nodename nor servname|name resolution|getaddrinfo|no address "
                r"associated", re.I), "dns_error"),
    (re.compile(r"ssl|certificate", re.I), "ssl_error"),
    (re.compile(r"unknown url type|no host given|invalid url|url can't contain", re.I), "bad_url"),
    (re.compile(r"x-robots-tag", re.I), "disallowed_by_robots"),
    (re.compile(r"hash mismatch", re.I), "hash_mismatch"),
    (re.compile(r"image too small", re.I), "image_too_small"),
    (re.compile(r"image area too large", re.I), "image_too_large"),
    (re.compile(r"aspect ratio too large", re.I), "aspect_ratio_too_large"),
    (re.compile(r"incompleteread|incomplete read", re.I), "incomplete_read"),
]


def failure_reason(status: str | None, error_message: str | None) -> str:
    """A short snake_case reason for a failed img2dataset row (``HTTP Error 404: Not Found`` → ``http_404``,
    ``timed out`` → ``timeout``, ``Image decoding error`` → ``decode_error``, ...); an unknown message gives
    ``download_error`` or ``resize_error`` after img2dataset's status."""
    msg = str(error_message or "")
    for pattern, reason in _REASONS:
        m = pattern.search(msg)
        if m:
            return reason.format(*m.groups())
    if status == "failed_to_download":
        return "download_error"
    if status == "failed_to_resize":
        return "resize_error"
    return re.sub(r"[^a-z0-9]+", "_", str(status or "").lower()).strip("_")[:40] or "unknown_error"


# ----- shards ------------------------------------------------------------------------------------------
def _finished_shards(shards: Path) -> set[int]:
    """Shard ids whose ``NNNNN_stats.json`` exists (img2dataset writes it after the tar and parquet)."""
    if not shards.is_dir():
        return set()
    return {int(m.group(1)) for p in shards.iterdir() if (m := _STATS_RE.match(p.name)) and p.is_file()}


def _shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"  # img2dataset's oom_shard_count=5


def normalize_tar(path: Path) -> bool:
    """Rewrite an img2dataset tar in key order with header times, owners and modes fixed (atomically), so its
    bytes do not depend on download completion order; False when it already is. Members of one key keep
    their order."""
    with tarfile.open(path, "r:") as tf:
        members = [m for m in tf.getmembers() if m.isreg()]
        keyed = []
        for i, m in enumerate(members):
            km = _KEY_EXT.match(m.name)
            keyed.append(((km.group(1) if km else m.name), i, m))
        ordered = sorted(keyed, key=lambda t: (t[0], t[1]))
        if ordered == keyed and all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o444
                                    and not m.uname and not m.gname for m in members):
            return False
        from builders.writers.webdataset import _tarinfo  # the builders' fixed header fields

        tmp = atomic_path(path)
        try:
            with open(tmp, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as out:
                for _, _, m in ordered:
                    out.addfile(_tarinfo(m.name, m.size), tf.extractfile(m))
        except BaseException:
            discard(tmp)
            raise
    commit(tmp, path)
    return True


def _shard_files(shards: Path, shard_id: int) -> list[Path]:
    """A shard's files, the stats file (img2dataset's "finished" mark) first so removing them in this order
    never leaves a finished-looking shard without its data."""
    name = _shard_name(shard_id)
    return [shards / f"{name}_stats.json", shards / f"{name}.parquet", shards / f"{name}.tar"]


def _shard_problem(mined: Mined, shards: Path, shard_id: int, shard_size: int) -> str | None:
    """Why a shard img2dataset calls finished is not done (None when it is): its parquet must list each URL of
    its slice of ``urls.parquet`` exactly once (img2dataset cuts the list in order), and its tar must hold one
    image per ``success`` row."""
    import pyarrow.parquet as pq

    name = _shard_name(shard_id)
    expected = list(mined.url_class)[shard_id * shard_size:(shard_id + 1) * shard_size]
    try:
        rows = pq.read_table(shards / f"{name}.parquet", columns=["url", "status"]).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a missing or damaged file
        return f"its parquet file cannot be read ({str(exc).splitlines()[0][:120] if str(exc) else exc!r})"
    seen = Counter(r["url"] for r in rows)
    dups = [u for u, n in seen.items() if n > 1]
    if dups:
        return f"{len(dups)} url(s) appear more than once, e.g. {dups[0]} (duplicated samples)"
    lost = [u for u in expected if u not in seen]
    if lost:
        return f"{len(lost)} mined url(s) are missing, e.g. {lost[0]} (lost rows)"
    foreign = [u for u in seen if u not in set(expected)]
    if foreign:
        return f"url {foreign[0]!r} is not in this shard's part of {mined.urls_file}; OUT holds another download"
    successes = sum(1 for r in rows if r["status"] == "success")
    tar = shards / f"{name}.tar"
    try:
        with tarfile.open(tar, "r:") as tf:
            images = sum(1 for m in tf.getmembers() if m.isreg() and m.name.endswith(f".{ENCODE_FORMAT}"))
    except FileNotFoundError:
        images = 0
    except (tarfile.TarError, OSError) as exc:
        return f"its tar cannot be read ({exc})"
    if images != successes:
        return f"its tar holds {images} image(s) for {successes} downloaded row(s)"
    return None


def _settle_shards(mined: Mined, out: Path, settings: dict, num_shards: int) -> dict[int, str]:
    """Mark every finished shard that checks out as done (:class:`vlm_classdata.stages.Stages`, fingerprint: the download
    settings and the shard id; info: its files' sizes and times). A finished shard that does not check out is
    removed, so the next run fetches it again, and returned as ``{shard id: problem}``. A marked shard whose
    files are unchanged is not read again."""
    shards, stages = out / "shards", Stages(out / STAGES_DIR)
    bad: dict[int, str] = {}
    for shard_id in range(num_shards):
        unit, key = f"shard-{_shard_name(shard_id)}", fingerprint(settings, shard_id)
        files = [p for p in _shard_files(shards, shard_id) if p.is_file()]
        info = stages.done(unit, key)
        if info is not None and info.get("files") == file_listing(files, shards):
            continue
        tar = shards / f"{_shard_name(shard_id)}.tar"
        try:
            if tar.is_file():
                normalize_tar(tar)
        except (tarfile.TarError, EOFError) as exc:
            problem: str | None = f"its tar cannot be read ({exc})"
        else:
            problem = _shard_problem(mined, shards, shard_id, int(settings["shard_size"]))
        if problem is None:
            stages.mark(unit, key, {"files": file_listing([p for p in files if p.is_file()], shards)})
            continue
        stages.clear(unit)
        for p in _shard_files(shards, shard_id):
            p.unlink(missing_ok=True)
        bad[shard_id] = problem
    return bad


def _shards_digest(shards: Path) -> str:
    """Identity of the shard tars as they are now (names, sizes, modification times)."""
    h = hashlib.sha256()
    for p in sorted(shards.glob("*.tar")):
        st = p.stat()
        h.update(f"{p.name}\x1f{st.st_size}\x1f{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _account(mined: Mined, shards: Path, num_shards: int) -> dict:
    """Per-class mined / downloaded / failed-by-reason from the shards' parquet files; raise if a row is lost
    or duplicated (every mined URL must be in exactly one finished shard, once)."""
    import pyarrow.parquet as pq

    seen: Counter[str] = Counter()
    downloaded: Counter[str] = Counter()
    failed: dict[str, Counter[str]] = {cid: Counter() for cid in mined.mined}
    examples: dict[str, str] = {}
    for shard_id in range(num_shards):
        pfile = shards / f"{_shard_name(shard_id)}.parquet"
        try:
            rows = pq.read_table(pfile, columns=["url", "class_id", "status", "error_message"]).to_pylist()
        except Exception as exc:
            raise TargetedError(f"{pfile}: cannot read the shard's parquet file ({exc})") from exc
        for row in rows:
            url = row["url"]
            seen[url] += 1
            cid = mined.url_class.get(url)
            if cid is None:
                raise TargetedError(f"{pfile}: url {url!r} is not in {mined.urls_file}; OUT holds another download")
            if row["class_id"] != cid:
                raise TargetedError(f"{pfile}: url {url!r} carries class {row['class_id']!r}, mined as {cid!r}")
            if row["status"] == "success":
                downloaded[cid] += 1
            else:
                reason = failure_reason(row["status"], row["error_message"])
                failed[cid][reason] += 1
                msg = str(row["error_message"] or row["status"] or "")[:200]
                examples[reason] = min(examples.get(reason, msg), msg)
    dups = [u for u, n in seen.items() if n > 1]
    if dups:
        raise TargetedError(f"{len(dups)} url(s) appear more than once in {shards}, e.g. {dups[0]} (duplicated samples)")
    lost = [u for u in mined.url_class if u not in seen]
    if lost:
        raise TargetedError(f"{len(lost)} mined url(s) are in no shard of {shards}, e.g. {lost[0]} (lost rows)")
    classes = {}
    for cid, n in mined.mined.items():
        nfailed = sum(failed[cid].values())
        if n != downloaded[cid] + nfailed:
            raise TargetedError(f"class {cid}: mined {n} != downloaded {downloaded[cid]} + failed {nfailed}")
        classes[cid] = {"class_name": mined.vocabulary[cid].name, "mined": n, "downloaded": downloaded[cid],
                        "failed": dict(sorted(failed[cid].items()))}
    reasons: Counter[str] = Counter()
    for c in failed.values():
        reasons.update(c)
    totals = {"mined": mined.rows, "downloaded": sum(downloaded.values()), "failed": sum(reasons.values()),
              "failed_reasons": dict(sorted(reasons.items()))}
    return {"classes": classes, "totals": totals, "error_examples": dict(sorted(examples.items()))}


# ----- img2dataset ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _output_to(log_file: Path | None) -> Iterator[None]:
    """Send this process's and its children's stdout/stderr to ``log_file`` (None: leave them alone)."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        with open(log_file, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _call_img2dataset(mined: Mined, shards: Path, log_file: Path | None, **opts) -> None:
    """Run ``img2dataset.download`` (quietly, without network checks) and restore the SIGINT handler it sets."""
    # albumentations (imported by img2dataset) asks the package registry for a newer version unless told not to;
    # the spawned workers inherit the environment
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_MODE", "disabled")
    main_thread = threading.current_thread() is threading.main_thread()
    old_handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with _output_to(log_file):
            import img2dataset

            img2dataset.download(
                url_list=str(mined.urls_file), input_format="parquet", url_col="url", caption_col="caption",
                save_additional_columns=list(SAVED_COLUMNS), output_format="webdataset",
                output_folder=str(shards), incremental_mode="incremental", enable_wandb=False,
                distributor="multiprocessing", compute_hash="sha256", encode_format=ENCODE_FORMAT, **opts)
    finally:
        if main_thread and old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)


def _read_state(out: Path) -> dict:
    try:
        data = json.loads((out / STATE_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _check_download_options(image_size: int, resize_mode: str, processes: int, threads: int, timeout: float,
                            retries: int, shard_size: int) -> None:
    if image_size < 1:
        raise UserError("--image-size must be at least 1")
    if resize_mode not in RESIZE_MODES:
        raise UserError(f"--resize-mode must be one of {', '.join(RESIZE_MODES)}, not {resize_mode!r}")
    if processes < 1 or threads < 1:
        raise UserError("--processes and --threads must be at least 1")
    if not timeout > 0:
        raise UserError("--timeout must be positive")
    if retries < 0:
        raise UserError("--retries must be 0 or more")
    if shard_size < 1:
        raise UserError("--shard-size must be at least 1")


def download(mined_dir: str | os.PathLike, out_dir: str | os.PathLike, image_size: int = 256,
             resize_mode: str = "border", processes: int = 1, threads: int = 16, timeout: float = 10,
             retries: int = 0, shard_size: int = 10000, progress: bool = True) -> dict:
    """Download ``MINED/urls.parquet`` into ``OUT/shards`` with img2dataset (webdataset, incremental: finished
    shards are never fetched again) and return the per-class account (also written to ``OUT/download.json``);
    the returned dict also has ``"run"`` (shards fetched by this call, seconds), which the file does not."""
    _check_download_options(image_size, resize_mode, processes, threads, timeout, retries, shard_size)
    mined = load_mined(mined_dir)
    out = Path(out_dir).expanduser()
    with claim_out(out, mined):
        return _download(mined, out, image_size, resize_mode, processes, threads, timeout, retries, shard_size,
                         progress)


def claim_out(out: Path, mined: Mined) -> RunLock:
    """Check OUT (a folder, not the MINED folder or inside it; OUT/mined from the same command is fine), take
    its run lock (a live run on it is one line) and remove what dead runs left (temporary files)."""
    where, source = out.resolve(), mined.path.resolve()
    if where == source or source in where.parents:
        raise UserError(f"--out {out} is the MINED folder or inside it; write the download elsewhere")
    return open_out(out, command="builders.targeted", legacy=(STATE_FILE, "download.json", "shards"))


def _download(mined: Mined, out: Path, image_size: int, resize_mode: str, processes: int, threads: int,
              timeout: float, retries: int, shard_size: int, progress: bool) -> dict:
    """:func:`download` with the MINED folder loaded and the options checked."""
    shards = out / "shards"
    settings = {"urls_sha256": mined.urls_sha256, "rows": mined.rows, "shard_size": int(shard_size),
                "image_size": int(image_size), "resize_mode": resize_mode, "encode_format": ENCODE_FORMAT}
    state = _read_state(out)
    old = state.get("download_settings")
    if old is not None and old != settings:
        diff = ", ".join(f"{k} {old.get(k)} → {v}" for k, v in settings.items() if old.get(k) != v)
        raise UserError(f"{out} holds a download made with other settings ({diff}); use a new --out")
    if old is None and shards.exists() and any(shards.iterdir()):
        raise UserError(f"{shards} is not empty and was not made by this command; use a new --out")
    state["download_settings"] = settings
    write_json_atomic(out / STATE_FILE, state)  # before downloading: a killed run is resumed only with these settings

    num_shards = math.ceil(mined.rows / shard_size)
    t0 = time.time()
    todo = sorted(set(range(num_shards)) - _finished_shards(shards))
    if todo:
        _call_img2dataset(mined, shards, None if progress else out / "img2dataset.log",
                          image_size=int(image_size), resize_mode=resize_mode, processes_count=int(processes),
                          thread_count=int(threads), timeout=timeout, retries=int(retries),
                          number_sample_per_shard=int(shard_size))
    finished = _finished_shards(shards)
    unfinished = sorted(set(range(num_shards)) - finished)
    if unfinished:
        names = ", ".join(_shard_name(s) for s in unfinished[:5]) + (" ..." if len(unfinished) > 5 else "")
        raise DownloadIncomplete(f"{len(unfinished)} of {num_shards} shards did not finish ({names}); "
                                 "run the same command again to resume")
    extra = sorted(s for s in finished if s >= num_shards)
    if extra:
        raise TargetedError(f"{shards} holds shard {_shard_name(extra[0])} beyond the {num_shards} this list makes")
    bad = _settle_shards(mined, out, settings, num_shards)
    if bad:
        first = min(bad)
        raise DownloadIncomplete(
            f"{len(bad)} of {num_shards} shards failed and were removed: shard {_shard_name(first)}: {bad[first]}"
            + (f"; also {', '.join(_shard_name(s) for s in sorted(bad)[1:6])}" if len(bad) > 1 else "")
            + "; run the same command again to fetch them again")
    account = _account(mined, shards, num_shards)
    summary = {**account, "shards": num_shards, "image_size": int(image_size), "resize_mode": resize_mode,
               "shard_size": int(shard_size), "encode_format": ENCODE_FORMAT, "urls_sha256": mined.urls_sha256}
    write_json_atomic(out / "download.json", summary)
    return {**summary, "run": {"shards_fetched": [_shard_name(s) for s in todo],
                               "seconds": round(time.time() - t0, 3)}}


# ----- build ---------------------------------------------------------------------------------------------
def _check_extra_args(extra_args: Sequence[str]) -> list[str]:
    extra = [str(a) for a in extra_args]
    own = [a for a in extra if a.split("=", 1)[0] in _OWN_BUILD_OPTIONS]
    if own:
        raise UserError(f"{own[0].split('=', 1)[0]} is set by builders.targeted; it cannot be passed to the build")
    if extra:  # check them now, not after a long download
        from builders.imagenet_qa import build_parser as build_cli

        try:
            with contextlib.redirect_stderr(io.StringIO()):
                build_cli().parse_args(["--source", "webdataset", "--root", ".", *extra])
        except SystemExit:
            raise UserError(f"build options not understood by python -m builders.imagenet_qa: {' '.join(extra)}") from None
    return extra


def build(mined_dir: str | os.PathLike, out_dir: str | os.PathLike, outputs: str = DEFAULT_OUTPUTS, seed: int = 0,
          extra_args: Sequence[str] = (), rebuild: bool = False, progress: bool = True) -> dict:
    """Build instruction/eval data from ``OUT/shards`` into ``OUT/build`` (the builders pipeline, in-process,
    labels from the shards' ``json:class_id``) and return its manifest. A build made from other shards, or
    ``rebuild=True``, is redone from scratch; otherwise an unfinished build resumes."""
    mined = load_mined(mined_dir)
    out = Path(out_dir).expanduser()
    extra = _check_extra_args(extra_args)
    _require_download(out)
    with claim_out(out, mined):
        return _build(mined, out, outputs, seed, extra, rebuild, progress)


def _require_download(out: Path) -> None:
    if not (out / "download.json").is_file() or not any((out / "shards").glob("*.tar")):
        raise UserError(f"{out} holds no finished download; run the download first")


def _build(mined: Mined, out: Path, outputs: str, seed: int, extra: list[str], rebuild: bool,
           progress: bool) -> dict:
    """:func:`build` with the MINED folder loaded, the download checked and ``extra`` checked."""
    from builders.imagenet_qa import main as build_main

    shards = out / "shards"
    build_dir = out / "build"
    digest = _shards_digest(shards)
    state = _read_state(out)
    stale = build_dir.exists() and state.get("built_from") != digest
    # ClassVocabulary.load names the dataset after the JSON's "dataset" field (the file's stem when it has none)
    argv = ["--source", "webdataset", "--root", str(shards), "--classes", str(mined.path / "classes.json"),
            "--label-field", "json:class_id", "--split-name", "train", "--out", str(build_dir),
            "--outputs", outputs, "--seed", str(int(seed))]
    if rebuild or stale:
        argv.append("--overwrite")
    if not progress:
        argv.append("--quiet")
    state["built_from"] = digest
    write_json_atomic(out / STATE_FILE, state)
    try:
        with contextlib.redirect_stdout(sys.stdout if progress else io.StringIO()):
            build_main(argv + extra)
    except UserError as exc:  # the builders CLI's advice names its own option
        raise UserError(str(exc).replace("--overwrite", "--rebuild")) from None
    return json.loads((build_dir / "manifest.json").read_text())


# ----- run -----------------------------------------------------------------------------------------------
def _table(section: dict) -> str:
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


def run(mined_dir: str | os.PathLike, out_dir: str | os.PathLike, image_size: int = 256, resize_mode: str = "border",
        processes: int = 1, threads: int = 16, timeout: float = 10, retries: int = 0, shard_size: int = 10000,
        outputs: str = DEFAULT_OUTPUTS, seed: int = 0, extra_args: Sequence[str] = (), rebuild: bool = False,
        progress: bool = True) -> dict:
    """Download, build, then add the ``targeted`` section (mine report, download account, kept per class) to
    ``OUT/build/manifest.json`` (atomically); print a per-class table; return the manifest."""
    mined = load_mined(mined_dir)  # fail fast, before any process starts
    extra = _check_extra_args(extra_args)
    _check_download_options(image_size, resize_mode, processes, threads, timeout, retries, shard_size)
    out = Path(out_dir).expanduser()
    with claim_out(out, mined):
        return _run(mined, out, extra, image_size, resize_mode, processes, threads, timeout, retries, shard_size,
                    outputs, seed, rebuild, progress)


def _run(mined: Mined, out: Path, extra: list[str], image_size: int, resize_mode: str, processes: int,
         threads: int, timeout: float, retries: int, shard_size: int, outputs: str, seed: int, rebuild: bool,
         progress: bool) -> dict:
    """:func:`run` under OUT's run lock."""
    dl = _download(mined, out, image_size, resize_mode, processes, threads, timeout, retries, shard_size, progress)
    if dl["totals"]["downloaded"] == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in dl["totals"]["failed_reasons"].items())
        raise TargetedError(f"none of the {dl['totals']['mined']} mined URLs could be downloaded ({reasons}); "
                            "nothing to build")
    _require_download(out)
    manifest = _build(mined, out, outputs, seed, extra, rebuild, progress)
    written = {}
    for info in manifest["splits"].values():
        for cid, n in info.get("class_counts", {}).items():
            written[cid] = written.get(cid, 0) + n
    section = {"mine": mined.report, "download": {k: v for k, v in dl.items() if k != "run"},
               "kept": {cid: int(written.get(cid, 0)) for cid in mined.mined}}
    manifest["targeted"] = section
    path = out / "build" / "manifest.json"
    BuildManifest.model_validate(manifest).write(path)
    print(_table(section))
    print(f"  manifest   {path}")
    return manifest


# ----- CLI -----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; options not listed here are passed to ``python -m builders.imagenet_qa``."""
    from corpora_stats.mine import add_mine_options

    p = argparse.ArgumentParser(
        prog="python -m builders.targeted", allow_abbrev=False,
        description="Mine a URL list for under-exposed classes (--counts/--select/--corpus, as python -m "
                    "corpora_stats mine) or take one (--mined), download it with img2dataset and build "
                    "instruction/eval data from it, with per-class mined/downloaded/kept counts. Running it "
                    "again with the same --out resumes; finished shards are never fetched twice. Other options "
                    "(e.g. --mcq-choices 5, --limit 100) are passed to python -m builders.imagenet_qa.")
    p.add_argument("--mined", help="MINED folder from python -m corpora_stats mine (urls.parquet, classes.json, "
                                   "mine_report.json); or mine here with --counts/--select/--corpus")
    p.add_argument("--out", required=True, help="output folder (mined/, shards/, build/, download.json)")
    m = p.add_argument_group("mining in the same command (instead of --mined; written to OUT/mined)")
    add_mine_options(m, standalone=False)
    d = p.add_argument_group("download (img2dataset)")
    d.add_argument("--image-size", type=int, default=256, help="resize target in pixels (default 256)")
    d.add_argument("--resize-mode", choices=RESIZE_MODES, default="border", help="img2dataset resize mode (default border)")
    d.add_argument("--processes", type=int, default=1, help="download processes (default 1)")
    d.add_argument("--threads", type=int, default=16, help="download threads per process (default 16)")
    d.add_argument("--timeout", type=float, default=10, help="per-request timeout in seconds (default 10)")
    d.add_argument("--retries", type=int, default=0, help="retries per failed URL (default 0)")
    d.add_argument("--shard-size", type=int, default=10000, help="URLs per shard, the unit of resume (default 10000)")
    b = p.add_argument_group("build")
    b.add_argument("--outputs", default=DEFAULT_OUTPUTS, help=f"builders outputs (default {DEFAULT_OUTPUTS})")
    b.add_argument("--seed", type=int, default=0, help="seed for templates, distractors, letters (default 0)")
    b.add_argument("--rebuild", action="store_true", help="rebuild OUT/build from the shards instead of resuming it")
    b.add_argument("--download-only", action="store_true", help="stop after the download and its account")
    p.add_argument("--quiet", action="store_true", help="no progress output (img2dataset's goes to OUT/img2dataset.log)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m builders.targeted``."""
    args, extra = build_parser().parse_known_args(argv)
    mining = [args.counts, args.select, args.corpus]
    if args.mined and any(mining):
        raise UserError("give either --mined or --counts/--select/--corpus, not both")
    if not args.mined:
        if not all(mining):
            raise UserError("give --mined MINED, or --counts, --select and --corpus to mine in the same command")
        from corpora_stats.mine import corpus_paths_from_args, format_summary, mine

        args.mined = str(Path(args.out) / "mined")
        report = mine(args.counts, corpus_paths_from_args(args.corpus), args.mined, args.select,
                      per_class=args.per_class, seed=args.seed, forms=args.forms, url_col=args.url_col,
                      text_col=args.text_col, corpus=args.counts_corpus, show_progress=not args.quiet)
        print(format_summary(report, args.mined))
    try:
        if args.download_only:
            if extra:
                raise UserError(f"unknown option {extra[0]} (build options make no sense with --download-only)")
            dl = download(args.mined, args.out, image_size=args.image_size, resize_mode=args.resize_mode,
                          processes=args.processes, threads=args.threads, timeout=args.timeout,
                          retries=args.retries, shard_size=args.shard_size, progress=not args.quiet)
            t = dl["totals"]
            print(f"downloaded {t['downloaded']} of {t['mined']} ({t['failed']} failed) → {Path(args.out) / 'shards'}")
            return 0
        run(args.mined, args.out, image_size=args.image_size, resize_mode=args.resize_mode,
            processes=args.processes, threads=args.threads, timeout=args.timeout, retries=args.retries,
            shard_size=args.shard_size, outputs=args.outputs, seed=args.seed, extra_args=extra,
            rebuild=args.rebuild, progress=not args.quiet)
    except TargetedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from vlm_classdata.errors import run_cli

    sys.exit(run_cli(main))
