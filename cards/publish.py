"""Publish a dataset folder (card + data + images) to the Hugging Face Hub.

``python -m cards publish FOLDER --repo-id OWNER/NAME [--private] [--dry-run]`` calls :func:`publish_main`.

- The token comes from ``--token``-style callers, ``HF_TOKEN`` or the huggingface_hub login cache
  (:func:`resolve_token`); it is only ever handed to :class:`huggingface_hub.HfApi`, never printed, logged,
  written to a file or put into an error message (messages are scrubbed as a last line of defence).
- :func:`plan_upload` lists exactly the files the upload sends: it applies the same allow/ignore patterns, with
  the same matcher (``huggingface_hub.utils.filter_repo_objects``) and the same built-in ignores
  (``DEFAULT_IGNORE_PATTERNS``) that ``HfApi.upload_folder`` uses, so ``--dry-run`` is faithful.
- Every failure is one :class:`vlm_classdata.errors.UserError` line: no token, token rejected (401), no permission
  (403), unknown owner (404), Hub unreachable, offline mode, any other HTTP error with its status and the
  server's first message line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vlm_classdata.errors import UserError

#: Files never uploaded: resumable-build state, caches, temporary/partial files, git internals, lock files.
#: Patterns are ``fnmatch`` globs on the POSIX path relative to the folder (``*`` also matches ``/``), exactly
#: as huggingface_hub applies them.
DEFAULT_IGNORE: tuple[str, ...] = (
    ".state/**", "*/.state/**",
    ".cache/**", "*/.cache/**",
    ".git/**", "*/.git/**",
    "*.tmp", "*.part", "*.lock", "*.incomplete",
    ".*.tmp[0-9]*", "*/.*.tmp[0-9]*",  # what a killed atomic write left (vlm_classdata.atomic.atomic_path)
    ".DS_Store", "*/.DS_Store",
    ".vlm-classdata*", "*/.vlm-classdata*",  # the owner marker and run lock of vlm_classdata.stages
)

_NAME_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_FORBIDDEN_PARTS = (".git", ".cache")  # the Hub refuses any path with such a folder (huggingface_hub too)
_NO_TOKEN = "no Hugging Face token: set HF_TOKEN or run `hf auth login`"


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did: the dataset URL, the files sent (relative path, bytes), their total size and
    the Hub commit id (``None`` for a dry run)."""

    url: str
    files: list[tuple[str, int]] = field(default_factory=list)
    bytes: int = 0
    commit: str | None = None


# ----------------------------------------------------------------------------------------------- token


def resolve_token(token: str | None = None) -> str | None:
    """The token to publish with: ``token`` if given, else ``$HF_TOKEN``, else huggingface_hub's login cache
    (``huggingface_hub.get_token()``: ``HF_TOKEN``/``HUGGING_FACE_HUB_TOKEN``, the token file under
    ``HF_HOME``, OIDC in CI); ``None`` when there is none. Blank values count as absent."""
    for candidate in (token, os.environ.get("HF_TOKEN")):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    from huggingface_hub import get_token  # heavy: only publishing needs it
    from huggingface_hub.errors import OIDCError  # heavy: only publishing needs it

    try:
        found = get_token()
    except OIDCError as exc:  # HF_OIDC_RESOURCE set but no id token: the message never holds a token
        raise UserError(f"cannot get a Hugging Face token via OIDC: {_first_line(str(exc))}") from None
    return found.strip() if found and found.strip() else None


# ----------------------------------------------------------------------------------------------- plan


def _patterns(patterns: str | Iterable[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _ignore_list(ignore: str | Iterable[str] | None) -> list[str]:
    """The ignore list huggingface_hub ends up using: ours plus its DEFAULT_IGNORE_PATTERNS (it appends them)."""
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS  # heavy: only publishing needs it

    return (_patterns(ignore) or []) + list(DEFAULT_IGNORE_PATTERNS)


def plan_upload(folder: str | Path, allow: str | Iterable[str] | None = None,
                ignore: str | Iterable[str] | None = DEFAULT_IGNORE) -> list[tuple[str, int]]:
    """Exactly the files an upload of ``folder`` sends: sorted ``(relative POSIX path, size in bytes)`` pairs.

    Lists files like ``HfApi.upload_folder`` (``folder.glob("**/*")``, files only, symlinks followed) and
    filters them with the same ``allow``/``ignore`` patterns and matcher. A path with a ``.git`` or ``.cache``
    folder that survives the filters is a :class:`UserError` (the Hub would refuse the whole commit).
    """
    from huggingface_hub.utils import filter_repo_objects  # heavy: only publishing needs it

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"dataset folder {str(folder)!r} not found (or not a directory)")
    root = root.resolve()
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.glob("**/*")) if p.is_file()}
    kept = filter_repo_objects(files.keys(), allow_patterns=_patterns(allow), ignore_patterns=_ignore_list(ignore))
    plan = []
    for rel in kept:
        bad = next((part for part in rel.split("/")[:-1] if part in _FORBIDDEN_PARTS), None)
        if bad is not None:
            raise UserError(f"cannot upload {rel!r}: the Hub refuses {bad}/ folders; ignore it (e.g. '{bad}/**')")
        plan.append((rel, files[rel].stat().st_size))
    return sorted(plan)


# ----------------------------------------------------------------------------------------------- checks


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """Check ``OWNER/NAME`` against the Hub's naming rules; return ``(owner, name)`` or raise UserError."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--repo-id {repo_id!r} must be OWNER/NAME (e.g. my-user/imagenet-qa)")
    for what, part in zip(("owner", "name"), parts, strict=True):
        if (not _NAME_PART.fullmatch(part) or "--" in part or ".." in part or len(part) > 96
                or (what == "name" and part.endswith(".git"))):
            raise UserError(
                f"--repo-id {repo_id!r}: invalid {what} {part!r} (letters, digits, '-', '_', '.'; no '--' or "
                "'..'; cannot start or end with '-' or '.'; at most 96 characters)")
    return parts[0], parts[1]


def _resolve_endpoint(endpoint: str | None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` read now (huggingface_hub only reads it at import), else its default."""
    from huggingface_hub import constants  # heavy: only publishing needs it

    value = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).strip().rstrip("/")
    if not re.match(r"https?://[^/\s]+", value):
        raise UserError(f"Hub endpoint {value!r} is not an http(s) URL (check HF_ENDPOINT)")
    return value


def _check_card(folder: Path, plan: Sequence[tuple[str, int]]) -> None:
    readme = folder / "README.md"
    if not readme.is_file():
        raise UserError(f"{folder}/README.md not found: generate the dataset card first (python -m cards ...)")
    if "README.md" not in {rel for rel, _ in plan}:
        raise UserError("README.md is excluded by the allow/ignore patterns: the dataset card must be uploaded")
    from huggingface_hub import DatasetCard  # heavy: only publishing needs it

    try:
        DatasetCard.load(readme)
    except Exception as exc:  # bad YAML front matter: the Hub would reject the commit after hashing everything
        raise UserError(f"{readme}: invalid card metadata ({_first_line(str(exc))})") from None


# ----------------------------------------------------------------------------------------------- errors


def _first_line(text: str, limit: int = 240) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _scrub(message: str, token: str | None) -> str:
    if token:
        message = message.replace(token, "***")
    return message


def _hub_error(exc: BaseException, *, stage: str, repo_id: str, endpoint: str) -> UserError:
    """One clear line for an exception raised by huggingface_hub during ``stage`` ('create' or 'upload')."""
    import httpx2  # heavy: only publishing needs it
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled  # heavy: only publishing needs it

    owner = repo_id.split("/", 1)[0]
    if isinstance(exc, OfflineModeIsEnabled):
        return UserError("HF_HUB_OFFLINE is set: unset it (or set HF_HUB_OFFLINE=0) to publish")
    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        server = _first_line(getattr(exc, "server_message", None) or "")
        if status == 401:
            return UserError(f"{endpoint} rejected the Hugging Face token (401 Unauthorized): check HF_TOKEN "
                             "or run `hf auth login`")
        if status == 403:
            return UserError(f"no permission for {repo_id} (403 Forbidden): the token needs write access to "
                             f"{owner!r}" + (f" ({server})" if server else ""))
        if status == 404 and stage == "create":
            return UserError(f"owner {owner!r} not found on {endpoint} (404): check --repo-id OWNER/NAME")
        if status == 404:
            return UserError(f"dataset repo {repo_id} not found on {endpoint} (404) while uploading")
        detail = server or _first_line(str(exc))
        what = "creating" if stage == "create" else "uploading to"
        return UserError(f"Hub error {status} while {what} {repo_id}: {detail}")
    if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
        kind = "timed out" if isinstance(exc, (httpx2.TimeoutException, TimeoutError)) else type(exc).__name__
        return UserError(f"cannot reach {endpoint}: network down? ({kind})")
    if isinstance(exc, ValueError):  # e.g. the Hub's validate-yaml rejected the card, invalid path in repo
        return UserError(f"upload of {repo_id} refused: {_first_line(str(exc))}")
    return UserError(f"publishing {repo_id} failed: {type(exc).__name__}: {_first_line(str(exc))}")


# ----------------------------------------------------------------------------------------------- publish


def publish(folder: str | Path, repo_id: str, private: bool = False, dry_run: bool = False,
            token: str | None = None, endpoint: str | None = None, commit_message: str | None = None,
            allow: str | Iterable[str] | None = None,
            ignore: str | Iterable[str] | None = DEFAULT_IGNORE) -> PublishResult:
    """Create the dataset repo ``repo_id`` if missing and upload ``folder`` (which must hold README.md).

    ``dry_run`` only plans (:func:`plan_upload`): no network, no token needed. Otherwise
    ``HfApi(endpoint=endpoint or $HF_ENDPOINT, token=...)`` runs ``create_repo(repo_type="dataset",
    private=private, exist_ok=True)`` (the private flag only applies when the repo is new) and then
    ``upload_folder`` with the same allow/ignore patterns as the plan.

    Large folders: huggingface_hub 2.4.0 has no separate ``upload_large_folder``; ``upload_folder`` itself is
    the resumable path when ``hf_xet`` is installed (it is here): it asks the Hub per 256 files how to send
    each one, streams big files through Xet (chunk-deduplicated), commits in adaptive batches, and a re-run
    after an interruption skips files whose remote oid already matches. Without ``hf_xet`` it falls back to
    a single commit. So there is no ``large=`` switch: every publish takes the large-folder path.
    """
    root = Path(folder).expanduser()
    owner_name = validate_repo_id(repo_id)
    plan = plan_upload(root, allow=allow, ignore=ignore)
    _check_card(root, plan)
    base = _resolve_endpoint(endpoint)
    url = f"{base}/datasets/{owner_name[0]}/{owner_name[1]}"
    total = sum(size for _, size in plan)
    if dry_run:
        return PublishResult(url=url, files=plan, bytes=total, commit=None)

    resolved = resolve_token(token)
    if resolved is None:
        raise UserError(_NO_TOKEN)

    from huggingface_hub import HfApi  # heavy: only publishing needs it

    api = HfApi(endpoint=base, token=resolved)
    stage = "create"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        stage = "upload"
        info = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=str(root.resolve()),
            commit_message=commit_message or f"Publish {root.resolve().name} (vlm-classdata cards publish)",
            allow_patterns=_patterns(allow), ignore_patterns=_patterns(ignore),
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # huggingface_hub / httpx2 errors become one scrubbed line
        err = _hub_error(exc, stage=stage, repo_id=repo_id, endpoint=base)
        raise UserError(_scrub(str(err), resolved)) from None
    commit = getattr(info, "oid", None)
    return PublishResult(url=url, files=plan, bytes=total, commit=commit)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def publish_main(folder: str | Path, repo_id: str, private: bool = False, dry_run: bool = False) -> int:
    """CLI body of ``python -m cards publish``: print the dry-run list or the published URL; return 0."""
    result = publish(folder, repo_id, private=private, dry_run=dry_run)
    n = len(result.files)
    if dry_run:
        width = max((len(rel) for rel, _ in result.files), default=0)
        for rel, size in result.files:
            print(f"{rel:<{width}}  {size:>12,} B")
        print(f"dry run: {n} files ({_mb(result.bytes)}, {result.bytes:,} bytes) would be uploaded to "
              f"{result.url}{' (private)' if private else ''}; nothing was sent")
        return 0
    print(f"published {n} files ({_mb(result.bytes)}) → {result.url}")
    return 0
