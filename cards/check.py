"""Offline check of a Hugging Face dataset folder (card + data + images) before it is published.

:func:`check_folder` reports every problem it finds, one line each: the README's front matter and its
parse with ``huggingface_hub.DatasetCard``/``DatasetCardData``; the required metadata keys and licence;
``configs`` (``MetadataConfigs``) and their data files; ``datasets.load_dataset(folder)`` under
``HF_HUB_OFFLINE=1`` with split sizes against ``dataset_info``; ``size_categories`` against the total; the
Markdown body's relative links and images; required sections; leftover placeholders; credential-like
strings (:func:`vlm_classdata.secrets.find_credentials`: keys, tokens, passwords in URLs) in any text file. ``DatasetCard.validate()`` posts to the Hub, so it is never called.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from cards.credentials import CREDENTIAL_KINDS, credential_lines, is_binary
from cards.metadata import DEFAULT_CONFIG, HUB_LICENSES, SIZE_CATEGORIES, size_category
from vlm_classdata.errors import UserError

#: required Markdown sections; each item is ``/``-separated alternatives, any of which a heading must contain
#: (case-insensitive)
DEFAULT_SECTIONS: tuple[str, ...] = ("summary", "structure", "creation", "licence/license/licensing", "citation")
REQUIRED_KEYS: tuple[str, ...] = ("license", "pretty_name", "task_categories", "size_categories", "configs",
                                  "dataset_info")
PLACEHOLDER_RE = re.compile(r"\bTODO\b|\[More Information Needed\]")
LICENSE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")

_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)", re.M | re.S)
_INLINE_CODE_RE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_HEADING_RE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.M)
_LINK_RE = re.compile(r"!?\[(?:[^\[\]\n]|\[[^\]\n]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_REF_DEF_RE = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*(<[^>\n]*>|\S+)", re.M)
_HTML_SRC_RE = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _blank_code(text: str) -> str:
    """``text`` with fenced code blocks and inline code replaced by spaces (newlines kept, so line numbers
    and offsets stay the same)."""
    def blank(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return _INLINE_CODE_RE.sub(blank, _FENCE_RE.sub(blank, text))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextmanager
def _offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the duration (env var and the values datasets/huggingface_hub read at import),
    progress bars off."""
    import datasets  # heavy: only the offline check needs it
    import datasets.config as dconfig  # heavy: only the offline check needs it
    from huggingface_hub import constants  # heavy: only the offline check needs it

    env = os.environ.get("HF_HUB_OFFLINE")
    saved = (dconfig.HF_HUB_OFFLINE, dconfig.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE)
    bars_off = datasets.are_progress_bars_disabled()
    os.environ["HF_HUB_OFFLINE"] = "1"
    dconfig.HF_HUB_OFFLINE = dconfig.HF_DATASETS_OFFLINE = constants.HF_HUB_OFFLINE = True
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
        dconfig.HF_HUB_OFFLINE, dconfig.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE = saved
        if not bars_off:
            datasets.enable_progress_bars()


def _inside(root: Path, target: str) -> tuple[Path | None, str | None]:
    """Resolve a relative link/pattern target inside ``root``: (path, None) or (None, why it is not allowed)."""
    if target.startswith("/") or target.startswith("\\"):
        return None, "is an absolute path"
    path = (root / target).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return None, "points outside the folder"
    return path, None


def _read_readme(readme: Path, problems: list[str]) -> tuple[str, str] | None:
    """README.md read once: (its text as ``DatasetCard.load`` sees it, newlines kept; the same text with
    universal newlines, as ``Path.read_text`` gives it), or None (a problem) when it is not UTF-8 text."""
    try:
        raw = readme.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"README.md cannot be read as UTF-8 text ({_first_line(exc)})")
        return None
    return raw, raw.replace("\r\n", "\n").replace("\r", "\n")


def _check_front_matter(raw: str, text: str, problems: list[str]) -> tuple[dict | None, Any, str]:
    """Parse README.md (``raw``/``text`` from :func:`_read_readme`): (metadata dict or None, DatasetCardData
    or None, Markdown body)."""
    from huggingface_hub import DatasetCard  # heavy: only the offline check needs it
    from huggingface_hub.repocard import REGEX_YAML_BLOCK  # heavy: only the offline check needs it

    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        problems.append("README.md has no YAML front matter (a '---' block at the top)")
        return None, None, text
    body = text[match.end():]
    try:
        meta = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        problems.append(f"README.md front matter is not valid YAML ({' '.join(str(exc).split())[:300]})")
        return None, None, body
    if not isinstance(meta, dict):
        problems.append("README.md front matter is not a YAML mapping")
        return None, None, body
    try:
        card_data = DatasetCard(raw).data
    except Exception as exc:  # any parse failure of the library is a problem to report, not a crash
        problems.append(f"README.md does not parse with huggingface_hub DatasetCard ({_first_line(exc)})")
        card_data = None
    return meta, card_data, body


def _check_keys(root: Path, meta: dict, problems: list[str]) -> None:
    """Required keys, licence, size_categories value."""
    for key in REQUIRED_KEYS:
        if meta.get(key) in (None, "", [], {}):
            problems.append(f"metadata: {key!r} is missing")
    lic = meta.get("license")
    if lic not in (None, "", []):
        ids = [lic] if isinstance(lic, str) else lic if isinstance(lic, list) else [lic]
        for one in ids:
            if not isinstance(one, str) or one not in HUB_LICENSES:
                problems.append(f"metadata: license {one!r} is not a Hugging Face Hub licence id "
                                f"(use 'other' with license_name and license_link)")
        if "other" in ids:
            name = meta.get("license_name")
            if not name:
                problems.append("metadata: license is 'other' but license_name is missing")
            elif not isinstance(name, str) or not LICENSE_NAME_RE.match(name):
                problems.append(f"metadata: license_name {name!r} must be lower-case letters, digits, '-' and '.'")
            link = meta.get("license_link")
            if isinstance(link, str) and link and not _SCHEME_RE.match(link):
                path, why = _inside(root, link.split("#", 1)[0])
                if why or not path.exists():
                    problems.append(f"metadata: license_link {link!r} {why or 'does not exist in the folder'}")
    sizes = meta.get("size_categories")
    if sizes not in (None, "", []):
        valid = {name for name, _ in SIZE_CATEGORIES} | {"other"}
        for one in [sizes] if isinstance(sizes, str) else sizes if isinstance(sizes, list) else [sizes]:
            if one not in valid:
                problems.append(f"metadata: size_categories {one!r} is not a Hub size category")
    for key in ("task_categories", "language", "source_datasets", "tags", "task_ids"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, str) or
                                      (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            problems.append(f"metadata: {key} must be a string or a list of strings")


def _config_patterns(data_files: Any) -> list[tuple[str | None, str]]:
    """(split or None, pattern) pairs of a config's ``data_files``."""
    if isinstance(data_files, str):
        return [(None, data_files)]
    out: list[tuple[str | None, str]] = []
    for item in data_files or []:
        if isinstance(item, str):
            out.append((None, item))
        elif isinstance(item, dict):
            paths = item.get("path")
            for p in [paths] if isinstance(paths, str) else paths or []:
                out.append((item.get("split"), p))
    return out


def _check_configs(root: Path, card_data: Any, problems: list[str]) -> dict:
    """Parse ``configs`` with MetadataConfigs; every data_files pattern must match a file in the folder."""
    from datasets.utils.metadata import MetadataConfigs  # heavy: only the offline check needs it

    try:
        configs = MetadataConfigs.from_dataset_card_data(card_data)
    except Exception as exc:
        problems.append(f"metadata: configs do not parse with datasets' MetadataConfigs ({_first_line(exc)})")
        return {}
    for name, config in configs.items():
        for split, pattern in _config_patterns(config.get("data_files")):
            where = f"config {name!r}" + (f" split {split!r}" if split else "")
            if not isinstance(pattern, str) or _SCHEME_RE.match(pattern):
                problems.append(f"configs: {where}: data file {pattern!r} is not a path inside the folder")
                continue
            _, why = _inside(root, pattern)
            if why:
                problems.append(f"configs: {where}: data file pattern {pattern!r} {why}")
            elif not [p for p in root.glob(pattern) if p.is_file()]:
                problems.append(f"configs: {where}: no file matches {pattern!r}")
    return dict(configs)


def _expected_sizes(card_data: Any, configs: dict, problems: list[str]) -> dict[str, dict[str, int]]:
    """{config: {split: num_examples}} from ``dataset_info``."""
    from datasets.info import DatasetInfosDict  # heavy: only the offline check needs it

    if card_data is None or card_data.get("dataset_info") is None:
        return {}
    try:
        infos = DatasetInfosDict.from_dataset_card_data(card_data)
    except Exception as exc:
        problems.append(f"metadata: dataset_info does not parse with datasets ({_first_line(exc)})")
        return {}
    out: dict[str, dict[str, int]] = {}
    for name, info in infos.items():
        if configs and name not in configs:
            problems.append(f"metadata: dataset_info describes config {name!r}, which configs does not list")
        if not info.splits:
            problems.append(f"metadata: dataset_info of config {name!r} lists no splits")
            continue
        out[name] = {split: int(s.num_examples or 0) for split, s in info.splits.items()}
    return out


def _check_load(root: Path, configs: dict, expected: dict[str, dict[str, int]],
                problems: list[str]) -> dict[str, dict[str, int]]:
    """``datasets.load_dataset`` every config offline; split sizes against ``dataset_info``; decode row 0."""
    from datasets import load_dataset  # heavy: only the offline check needs it

    names: list[str | None] = list(configs) or [None]
    got_all: dict[str, dict[str, int]] = {}
    with _offline(), tempfile.TemporaryDirectory(prefix="card_check_") as cache:
        for name in names:
            label = f" (config {name!r})" if name and len(names) > 1 else ""
            try:
                ds = load_dataset(str(root), name=name, cache_dir=cache, verification_mode="no_checks")
            except Exception as exc:
                problems.append(f"datasets.load_dataset fails offline{label}: {_first_line(exc)}")
                continue
            got = {split: ds[split].num_rows for split in ds}
            key = name or (next(iter(expected)) if len(expected) == 1 else DEFAULT_CONFIG)
            got_all[key] = got
            for split in ds:
                if ds[split].num_rows:
                    try:
                        ds[split][0]
                    except Exception as exc:
                        problems.append(f"split {split!r}{label}: first row does not decode ({_first_line(exc)})")
            want = expected.get(key)
            if want is None:
                continue
            for split in sorted(set(want) | set(got)):
                if split not in got:
                    problems.append(f"split {split!r}{label}: in dataset_info but not in the loaded data")
                elif split not in want:
                    problems.append(f"split {split!r}{label}: loaded ({got[split]} examples) but missing from "
                                    f"dataset_info")
                elif got[split] != want[split]:
                    problems.append(f"split {split!r}{label}: dataset_info says num_examples {want[split]}, "
                                    f"the data has {got[split]}")
    return got_all


def _check_body(root: Path, text: str, body: str, require_sections: Sequence[str], problems: list[str]) -> None:
    """Links/images in the body, required sections, placeholders (README-wide, outside code)."""
    plain_body = _blank_code(body)
    offset = len(text) - len(body)
    targets: list[tuple[int, str]] = []
    for regex in (_LINK_RE, _REF_DEF_RE, _HTML_SRC_RE):
        targets += [(m.start(1), m.group(1)) for m in regex.finditer(plain_body)]
    for pos, raw in sorted(targets):
        target = raw.strip("<>").strip()
        if not target or target.startswith("#") or target.startswith("//") or _SCHEME_RE.match(target):
            continue
        rel = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not rel:
            continue
        path, why = _inside(root, rel)
        line = _line_of(text, offset + pos)
        if why:
            problems.append(f"README.md line {line}: link {target!r} {why}")
        elif not path.exists():
            problems.append(f"README.md line {line}: link target {target!r} does not exist in the folder")
    headings = [h.lower() for h in _HEADING_RE.findall(plain_body)]
    for section in require_sections:
        alternatives = [a.strip().lower() for a in section.split("/") if a.strip()]
        if not any(a in h for h in headings for a in alternatives):
            problems.append(f"README.md: no section heading mentions {' or '.join(repr(a) for a in alternatives)}")
    plain = _blank_code(text)
    for m in PLACEHOLDER_RE.finditer(plain):
        problems.append(f"README.md line {_line_of(plain, m.start())}: leftover placeholder {m.group(0)!r}")


def _check_secrets(root: Path, problems: list[str]) -> None:
    """Credential-like strings (Hugging Face, API, GitHub and AWS keys, Bearer tokens, passwords in URLs, secret
    query parameters) in any text file of the folder, the README included: one problem per line and kind."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if ".git" in rel.parts or not path.is_file() or is_binary(path):
            continue
        try:
            found = credential_lines(path)
        except OSError as exc:
            problems.append(f"{rel.as_posix()}: cannot be read to look for credentials ({_first_line(exc)})")
            continue
        for line, kind in found:
            problems.append(f"{rel.as_posix()} line {line}: looks like {CREDENTIAL_KINDS.get(kind, kind)}; "
                            "remove it")


def _check(folder: str | Path, require_sections: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"{folder}: not a folder")
    problems: list[str] = []
    readme = root / "README.md"
    meta = card_data = None
    text = body = ""
    if not readme.is_file():
        problems.append("README.md is missing")
    else:
        read = _read_readme(readme, problems)
        if read is not None:
            meta, card_data, body = _check_front_matter(*read, problems)
            text = read[1]
    if meta is not None:
        _check_keys(root, meta, problems)
    configs: dict = {}
    expected: dict[str, dict[str, int]] = {}
    if card_data is not None:
        configs = _check_configs(root, card_data, problems)
        expected = _expected_sizes(card_data, configs, problems)
    got = _check_load(root, configs, expected, problems)
    sizes = got or expected
    main = sizes.get(DEFAULT_CONFIG) or next(iter(sizes.values()), {})
    stats = {"splits": len(main), "examples": sum(main.values())}
    if meta is not None and sizes and meta.get("size_categories") not in (None, "", []):
        declared = meta["size_categories"]
        declared = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
        want = size_category(stats["examples"])
        if declared and want not in declared:
            problems.append(f"metadata: size_categories {declared} does not match the {stats['examples']} "
                            f"examples (expected {want!r})")
    if readme.is_file():
        _check_body(root, text, body, require_sections, problems)
    _check_secrets(root, problems)
    return problems, stats


def check_folder(folder: str | Path, require_sections: Sequence[str] = DEFAULT_SECTIONS) -> list[str]:
    """Every problem of the Hugging Face dataset folder ``folder``, one line each (empty list: fine).

    ``require_sections``: headings the card must have (each item ``/``-separated alternatives, matched as
    case-insensitive substrings of the Markdown headings). Raises :class:`UserError` if ``folder`` is not a
    folder. Loads the data with ``datasets`` offline (``HF_HUB_OFFLINE=1`` during the call, a temporary cache).
    """
    return _check(folder, require_sections)[0]


def check_main(folder: str | Path, require_sections: Sequence[str] = DEFAULT_SECTIONS) -> int:
    """CLI helper: print ``ok: <folder> (<n> splits, <m> examples)`` and return 0, or print each problem as
    ``problem: ...`` and return 1."""
    problems, stats = _check(folder, require_sections)
    if problems:
        for problem in problems:
            print(f"problem: {problem}")
        return 1
    print(f"ok: {folder} ({stats['splits']} splits, {stats['examples']} examples)")
    return 0
