"""Find and load WordNet 3.0 offline.

Lookup order:
1. an NLTK ``wordnet`` corpus already on NLTK's data path (``NLTK_DATA`` included);
2. a system WordNet 3.0 dictionary (``$WNSEARCHDIR``, ``/usr/share/wordnet``, ...) copied into a
   project cache as ``<cache>/nltk_data/corpora/wordnet/`` together with the ``lexnames`` table that
   Debian's packages lack (NLTK refuses symlinks into other trees, so files are copied once);
3. otherwise :class:`WordNetMissingError` with the command that installs it.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from vlm_classdata.atomic import atomic_path, commit, discard
from vlm_classdata.errors import UserError

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader

INSTALL_HINT = (
    "WordNet 3.0 not found: install it with 'apt-get install wordnet-base wordnet-sense-index' "
    "(or set WNSEARCHDIR to a WordNet 3.0 dict folder, or NLTK_DATA to a folder with corpora/wordnet)"
)
SYSTEM_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/WordNet-3.0/dict",
               "/usr/local/WordNet-3.0/dict", "/opt/homebrew/share/wordnet")
_REQUIRED = ("data.noun", "index.noun", "noun.exc", "data.verb", "index.verb")
_COPY_GLOBS = ("data.*", "index.*", "*.exc", "cntlist.rev", "cntlist")


class WordNetMissingError(UserError):
    """No usable WordNet 3.0 database was found."""


def cache_dir() -> Path:
    """Project cache folder (``$VLMCD_CACHE`` or ``~/.cache/vlm-classdata``)."""
    root = os.environ.get("VLMCD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "vlm-classdata")
    return Path(root)


def _system_dict_candidates() -> list[Path]:
    dirs = []
    if os.environ.get("WNSEARCHDIR"):
        dirs.append(Path(os.environ["WNSEARCHDIR"]))
    dirs += [Path(d) for d in SYSTEM_DIRS]
    return [d for d in dirs if all((d / f).is_file() for f in _REQUIRED)]


def _install_into_cache(src: Path, nltk_root: Path) -> None:
    """Copy a WordNet dict folder into ``nltk_root/corpora/wordnet`` atomically, with lexnames."""
    target = nltk_root / "corpora" / "wordnet"
    if (target / "lexnames").is_file() and (target / "data.noun").is_file():
        return
    tmp = atomic_path(target)
    discard(tmp)
    tmp.mkdir(parents=True)
    for pattern in _COPY_GLOBS:
        for f in src.glob(pattern):
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
    shutil.copyfile(Path(__file__).with_name("data") / "lexnames", tmp / "lexnames")
    try:
        commit(tmp, target)
    except OSError:  # another process won the race
        discard(tmp)


def _nltk_has_wordnet() -> bool:
    import nltk  # heavy (~2 s): loaded only when WordNet is, not when a module using it is imported

    for name in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            found = nltk.data.find(name)
        except LookupError:
            continue
        if found is not None and name.endswith(".zip"):
            return True
        if found is not None and os.path.isfile(os.path.join(str(found), "lexnames")):
            return True
    return False


def ensure_wordnet() -> str:
    """Make WordNet 3.0 visible to NLTK; return a short description of where it was found."""
    import nltk  # heavy (~2 s): loaded only when WordNet is, not when a module using it is imported

    if _nltk_has_wordnet():
        return "nltk-data"
    nltk_root = cache_dir() / "nltk_data"
    candidates = _system_dict_candidates()
    if not candidates and not (nltk_root / "corpora" / "wordnet" / "lexnames").is_file():
        raise WordNetMissingError(INSTALL_HINT)
    if candidates:
        _install_into_cache(candidates[0], nltk_root)
    if str(nltk_root) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_root))
    return str(candidates[0]) if candidates else str(nltk_root)


@functools.lru_cache(maxsize=1)
def wordnet() -> WordNetCorpusReader:
    """The loaded NLTK WordNet 3.0 reader (found with :func:`ensure_wordnet`)."""
    ensure_wordnet()
    from nltk.corpus import wordnet as wn  # heavy (~2 s): see ensure_wordnet

    try:
        wn.ensure_loaded()
    except LookupError as exc:  # pragma: no cover - depends on the machine
        raise WordNetMissingError(INSTALL_HINT) from exc
    if wn.get_version() != "3.0":
        raise WordNetMissingError(f"WordNet {wn.get_version()} found, but ImageNet wnids need WordNet 3.0")
    return wn


def synset_from_wnid(wnid: str) -> Synset:
    """``n01440764`` → ``Synset('tench.n.01')``."""
    if len(wnid) < 2 or not wnid[1:].isdigit():
        raise ValueError(f"not a wnid: {wnid!r}")
    return wordnet().synset_from_pos_and_offset(wnid[0], int(wnid[1:]))


def wnid_of(synset: Synset) -> str:
    """``Synset('tench.n.01')`` → ``n01440764``."""
    return f"{synset.pos()}{synset.offset():08d}"
