"""Find and load WordNet 3.0 offline.

Lookup order (:func:`locate_wordnet`, which never imports NLTK, so callers can stamp the files cheaply):
1. an NLTK ``corpora/wordnet`` folder (with ``lexnames``) or ``corpora/wordnet.zip`` in the first of NLTK's
   data folders that has one (``NLTK_DATA`` included, see :func:`nltk_data_dirs`);
2. a system WordNet 3.0 dictionary (``$WNSEARCHDIR``, ``/usr/share/wordnet``, ...) copied into a
   project cache as ``<cache>/nltk_data/corpora/wordnet/`` together with the ``lexnames`` table that
   Debian's packages lack (NLTK refuses symlinks into other trees, so files are copied once);
3. otherwise :class:`WordNetMissingError` with the command that installs it.

:func:`wordnet` loads exactly that place, with NLTK's reader minus its multilingual version map (see
:func:`_reader_class`).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
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
# project caches this process put on nltk.data.path (NLTK reads only under its path): not the user's NLTK data
_ADDED_TO_NLTK_PATH: set[str] = set()


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


def nltk_data_dirs() -> list[str]:
    """The folders NLTK searches for data, in its order, without importing NLTK (~1 s): ``nltk.data.path``
    when NLTK is already imported (less the project caches :func:`wordnet` put there), else its defaults
    (``NLTK_DATA``, ``~/nltk_data``, under ``sys.prefix``, the system folders)."""
    loaded = sys.modules.get("nltk.data")
    if loaded is not None:
        return [str(d) for d in loaded.path if str(d) not in _ADDED_TO_NLTK_PATH]
    if os.name != "posix":  # NLTK's Windows defaults are not repeated here
        import nltk.data  # heavy (~1 s): only off POSIX, where NLTK's own list is the answer

        return [str(d) for d in nltk.data.path]
    dirs = [os.path.expanduser(d) for d in os.environ.get("NLTK_DATA", "").split(os.pathsep) if d]
    if "APPENGINE_RUNTIME" not in os.environ and os.path.expanduser("~/") != "~/":
        dirs.append(os.path.expanduser("~/nltk_data"))
    dirs += [os.path.join(sys.prefix, "nltk_data"), os.path.join(sys.prefix, "share", "nltk_data"),
             os.path.join(sys.prefix, "lib", "nltk_data"), "/usr/share/nltk_data", "/usr/local/share/nltk_data",
             "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"]
    return dirs


@dataclass(frozen=True)
class WordNetLocation:
    """Where WordNet is read from: ``path`` is a ``corpora/wordnet`` folder or a ``corpora/wordnet.zip`` file
    inside the NLTK data folder ``data_dir``; ``source`` says how it was found ("nltk-data", or the system
    dict folder that was copied into the project cache)."""

    path: Path
    data_dir: Path
    source: str

    def files(self) -> list[Path]:
        """The database files NLTK reads: every file of the folder (or the zip file itself), sorted."""
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.iterdir() if p.is_file())


def locate_wordnet() -> WordNetLocation:
    """Find WordNet 3.0 (see the module docstring) without importing NLTK; copy a system dict into the
    project cache on first use. :class:`WordNetMissingError` when there is none."""
    nltk_root = cache_dir() / "nltk_data"
    for d in nltk_data_dirs():
        data_dir = Path(d)
        if data_dir == nltk_root:  # the project cache itself is step 2 below (its source: a system dict)
            continue
        corpora = data_dir / "corpora"
        if (corpora / "wordnet" / "lexnames").is_file():
            return WordNetLocation(corpora / "wordnet", data_dir, "nltk-data")
        if (corpora / "wordnet.zip").is_file():
            return WordNetLocation(corpora / "wordnet.zip", data_dir, "nltk-data")
    target = nltk_root / "corpora" / "wordnet"
    candidates = _system_dict_candidates()
    if candidates:
        _install_into_cache(candidates[0], nltk_root)
        return WordNetLocation(target, nltk_root, str(candidates[0]))
    if (target / "lexnames").is_file():
        return WordNetLocation(target, nltk_root, str(nltk_root))
    raise WordNetMissingError(INSTALL_HINT)


def ensure_wordnet() -> str:
    """Make WordNet 3.0 available; return a short description of where it was found."""
    return locate_wordnet().source


@functools.lru_cache(maxsize=1)
def _reader_class() -> type[WordNetCorpusReader]:
    """NLTK's WordNet reader without the version map it builds on load for the Open Multilingual WordNet.

    ``WordNetCorpusReader.__init__`` calls ``map_wn()``, which maps the synsets of the "wordnet" corpus (WordNet
    3.0, the version OMW data is keyed by) onto the loaded version by reading ``index.sense`` twice (~1.5 CPU-s),
    because it compares the version "3.0" with the corpus name "wordnet". For a loaded WordNet 3.0 that map is
    the identity, and ``None`` (no map) is what NLTK itself returns when no mapping is needed; every other case
    is left to NLTK."""
    from nltk.corpus.reader.wordnet import WordNetCorpusReader  # heavy (~1 s): loaded only when WordNet is

    class WordNet30Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> dict[str, str] | None:
            if version == "wordnet" and self.get_version() == "3.0":
                return None
            return super().map_wn(version)

    return WordNet30Reader


@functools.lru_cache(maxsize=1)
def wordnet() -> WordNetCorpusReader:
    """The loaded NLTK WordNet 3.0 reader, read from :func:`locate_wordnet`'s place."""
    where = locate_wordnet()
    import nltk.data  # heavy (~1 s): loaded only when WordNet is, not when a module using it is imported
    from nltk.corpus.reader import CorpusReader  # heavy: as above
    from nltk.corpus.util import LazyCorpusLoader  # heavy: as above

    nltk_root = str(cache_dir() / "nltk_data")
    if where.data_dir == Path(nltk_root) and nltk_root not in nltk.data.path:
        nltk.data.path.insert(0, nltk_root)  # NLTK opens files only under its path; other NLTK users find it too
        _ADDED_TO_NLTK_PATH.add(nltk_root)
    resource = "corpora/wordnet.zip/wordnet/" if where.path.suffix == ".zip" else "corpora/wordnet"
    try:
        root = nltk.data.find(resource, paths=[str(where.data_dir)])
        # the multilingual data as NLTK's own nltk.corpus.wordnet names it (loaded only if asked for)
        omw = LazyCorpusLoader("omw-2.0", CorpusReader, r".*/wn-data-.*\.tab", encoding="utf8")
        wn = _reader_class()(root, omw)
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
