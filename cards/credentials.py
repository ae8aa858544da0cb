"""Credential-like strings in the text files of a folder about to be published
(:func:`vlm_classdata.secrets.find_credentials`), read in chunks, line by line; the secret itself is never kept."""

from __future__ import annotations

from pathlib import Path

from vlm_classdata.secrets import find_credentials

_BINARY_SUFFIX_TEXT = (".parquet .arrow .png .jpg .jpeg .gif .webp .bmp .tif .tiff .tar .zip .gz .zst .xz .bz2 .npy "
                       ".npz .pt .pth .bin .safetensors .pdf .mp4 .wav")
#: suffixes of files never read for credentials
BINARY_SUFFIXES = frozenset(_BINARY_SUFFIX_TEXT.split())
CHUNK = 1 << 20


def is_binary(path: Path) -> bool:
    """Whether a file is binary: by its suffix, else by a NUL byte in its first 8 KiB (unreadable: binary)."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            return b"\0" in f.read(8192)
    except OSError:
        return True


#: what each kind of :func:`vlm_classdata.secrets.find_credentials` match looks like, for the problem line
CREDENTIAL_KINDS = {
    "hf_token": "a Hugging Face access token", "openai_key": "an API key (sk-...)",
    "url_userinfo": "a user name or password in a URL (scheme://user:password@host)",
    "secret_query": "a secret in a URL query (key=, token=, password=, sig=...)", "bearer": "a Bearer token",
    "github_token": "a GitHub token", "aws_key": "an AWS access key id",
}


def credential_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, kind)`` of every credential-like string in a text file (:func:`vlm_classdata.secrets.find_credentials`;
    read in chunks, line by line; the secret itself is never kept)."""
    found: set[tuple[int, str]] = set()
    line_no = 1
    pending = ""
    with path.open("r", encoding="utf-8", errors="replace", newline="") as f:
        while True:
            chunk = f.read(CHUNK)
            pieces = (pending + chunk).split("\n")
            pending = pieces.pop() if chunk else ""
            for piece in pieces:
                found.update((line_no, kind) for kind, _ in find_credentials(piece))
                line_no += 1
            if len(pending) > 4 * CHUNK:  # one very long line: look at what is read, keep an overlap
                found.update((line_no, kind) for kind, _ in find_credentials(pending))
                pending = pending[-512:]
            if not chunk:
                return sorted(found)
