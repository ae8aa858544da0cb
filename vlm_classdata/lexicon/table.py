"""The :class:`Lexicon`: the forms of every class of a vocabulary, built and queried (see the package docstring)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from vlm_classdata.errors import UserError
from vlm_classdata.lexicon.aliases import load_aliases
from vlm_classdata.lexicon.cache import cache_enabled, cache_folder, cache_key, load_forms, store_forms
from vlm_classdata.lexicon.forms import FLAGS, KINDS, METHODS, Draft, Form, draft_forms, word_flags_of
from vlm_classdata.lexicon.text import normalize, stopwords
from vlm_classdata.lexicon.wordnet_senses import class_synset
from vlm_classdata.vocabulary import ClassEntry, ClassVocabulary
from vlm_classdata.wordnet import WordNetMissingError, wordnet

if TYPE_CHECKING:
    import polars
    from nltk.corpus.reader.wordnet import Synset


class Lexicon:
    """Surface forms of every class of a vocabulary (see the :mod:`vlm_classdata.lexicon` docstring)."""

    def __init__(self, vocab: ClassVocabulary, forms: list[Form], method: str = "wordnet") -> None:
        self.vocab = vocab
        self.forms = list(forms)
        self.method = method
        self._by_class: dict[str, list[Form]] = {}
        self._by_text: dict[str, list[str]] = {}
        for f in self.forms:
            self._by_class.setdefault(f.class_id, []).append(f)
            owners = self._by_text.setdefault(f.text, [])
            if f.class_id not in owners:
                owners.append(f.class_id)

    @classmethod
    def build(cls, vocab: ClassVocabulary, method: str = "wordnet", plurals: bool = True,
              aliases: str | Path | dict[str, list[str]] | None = None, cache: bool = True) -> Lexicon:
        """Forms of every class of ``vocab``; ``method`` "wordnet" (all forms, flagged) or "paper"
        (display names only). ``aliases``: a JSON/TSV file or ``{class_id: [alias, ...]}``.

        Served from the lexicon cache (:mod:`vlm_classdata.lexicon.cache`) when an entry of exactly these
        inputs exists, else built and stored there; ``cache=False`` or ``VLMCD_LEXICON_CACHE=0`` bypasses it."""
        if method not in METHODS:
            raise UserError(f"unknown lexicon method {method!r}; expected one of {', '.join(METHODS)}")
        use_cache = cache and cache_enabled()
        alias_map = load_aliases(aliases, vocab) if aliases is not None and method != "paper" else {}
        key = cache_key(vocab, method, plurals, alias_map) if use_cache else None
        forms = load_forms(key, vocab) if key is not None else None
        if forms is None and key is not None and method == "wordnet" and not wordnet.cache_info().currsize:
            forms = build_apart(vocab, plurals, alias_map, key)
        if forms is None:
            forms = _paper_forms(vocab) if method == "paper" else wordnet_forms(vocab, plurals, alias_map)
            if key is not None:
                store_forms(key, forms)
        return cls(vocab, forms, method)

    # ----- queries ------------------------------------------------------------------------------
    def forms_of(self, class_id: str) -> list[Form]:
        """The forms of one class (name, lemmas, aliases, plurals); KeyError for an unknown class id."""
        if class_id not in self.vocab:
            raise KeyError(f"class id {class_id!r} not in vocabulary {self.vocab.dataset!r}")
        return list(self._by_class.get(class_id, ()))

    def select(self, exclude_flags: tuple[str, ...] = ()) -> list[Form]:
        """The forms carrying none of ``exclude_flags`` (a subset of :data:`FLAGS`)."""
        bad = [f for f in exclude_flags if f not in FLAGS]
        if bad:
            raise UserError(f"unknown form flag(s) {', '.join(bad)}; known: {', '.join(FLAGS)}")
        drop = set(exclude_flags)
        return [f for f in self.forms if not drop.intersection(f.flags)]

    def to_frame(self) -> polars.DataFrame:
        """One row per form: ``class_id, class_name, form, kind, flags`` (comma-joined) ``, note``."""
        import polars as pl  # heavy (~0.15 s): only the forms table needs it, not the matching

        names = {e.class_id: e.name for e in self.vocab}
        return pl.DataFrame({
            "class_id": [f.class_id for f in self.forms],
            "class_name": [names.get(f.class_id, "") for f in self.forms],
            "form": [f.text for f in self.forms],
            "kind": [f.kind for f in self.forms],
            "flags": [",".join(f.flags) for f in self.forms],
            "note": [f.note for f in self.forms],
        }, schema={c: pl.String for c in ("class_id", "class_name", "form", "kind", "flags", "note")})

    def describe(self) -> dict:
        """JSON-able summary: method, classes, forms, counts by kind and by flag, flagged/clean totals."""
        by_kind = {k: 0 for k in KINDS}
        by_flag = {f: 0 for f in FLAGS}
        for f in self.forms:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
            for flag in f.flags:
                by_flag[flag] = by_flag.get(flag, 0) + 1
        clean_classes = {f.class_id for f in self.forms if not f.flags}
        return {
            "method": self.method,
            "classes": len(self.vocab),
            "forms": len(self.forms),
            "distinct_texts": len(self._by_text),
            "by_kind": by_kind,
            "by_flag": by_flag,
            "flagged_forms": sum(1 for f in self.forms if f.flags),
            "clean_forms": sum(1 for f in self.forms if not f.flags),
            "classes_without_clean_form": sum(1 for e in self.vocab if e.class_id not in clean_classes),
        }

    def __repr__(self) -> str:
        return f"Lexicon({self.vocab.dataset!r}, method={self.method!r}, forms={len(self.forms)})"


def build_apart(vocab: ClassVocabulary, plurals: bool, alias_map: dict[str, list[str]], key: str) -> list[Form] | None:
    """Build the WordNet forms in a child process that stores them in the cache under ``key``, then read them
    from there: NLTK (whose package imports scipy and scikit-learn: ~250 MB resident) never enters this process,
    which keeps a count's memory at its own size. None when the child fails: the caller then builds here (and
    reports what is wrong, e.g. no WordNet)."""
    try:
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
            vocab.save(Path(tmp) / "classes.json")
            spec = {"key": key, "plurals": bool(plurals), "aliases": alias_map}
            (Path(tmp) / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
            done = subprocess.run([sys.executable, "-m", "vlm_classdata.lexicon.build_entry", tmp], check=False,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return load_forms(key, vocab) if done.returncode == 0 else None


def _paper_forms(vocab: ClassVocabulary) -> list[Form]:
    """``method="paper"``: the normalised display names, unflagged."""
    return [Form(t, e.class_id, "name", ()) for e in vocab if (t := normalize(e.name))]


def wordnet_forms(vocab: ClassVocabulary, plurals: bool, alias_map: dict[str, list[str]]) -> list[Form]:
    """``method="wordnet"``: names, lemmas, aliases and plurals of every class, flagged (package docstring)."""
    try:
        wordnet()
        use_wordnet = True
    except WordNetMissingError:
        if any(e.wnid for e in vocab):
            raise
        use_wordnet = False

    per_class: list[tuple[ClassEntry, Synset | None, list[Draft]]] = []
    for e in vocab:
        synset, from_wnid = class_synset(e) if use_wordnet else (None, False)
        drafts = draft_forms(e, synset, from_wnid, alias_map.get(e.class_id, ()), plurals, use_wordnet)
        per_class.append((e, synset, drafts))

    owners: dict[str, list[str]] = {}
    for e, _, drafts in per_class:
        for d in drafts:
            owners.setdefault(d.text, []).append(e.class_id)
    stop = stopwords()

    forms: list[Form] = []
    for e, synset, drafts in per_class:
        word_flags = {id(d): word_flags_of(d, synset, stop, use_wordnet) for d in drafts if d.source is None}
        for d in drafts:
            flags: set[str] = set()
            notes: list[str] = []
            others = [c for c in owners[d.text] if c != e.class_id]
            if others:
                flags.add("shared")
                notes.append("shared with " + ", ".join(others[:5])
                             + (f" (+{len(others) - 5} more)" if len(others) > 5 else ""))
            if d.source is None:
                for flag, note in word_flags[id(d)]:
                    flags.add(flag)
                    notes.append(note)
            else:
                for flag, note in word_flags[id(d.source)]:
                    flags.add(flag)
                    notes.append(f"{note} (singular {d.source.text!r})")
            forms.append(Form(d.text, e.class_id, d.kind, tuple(sorted(flags)), "; ".join(notes)))
    return forms
