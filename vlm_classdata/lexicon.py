"""Surface forms of every class (display name, WordNet lemmas, plurals, aliases) with risk flags.

A :class:`Lexicon` lists, per class of a :class:`~vlm_classdata.vocabulary.ClassVocabulary`, the normalised texts
that count as a mention of the class. ``method="wordnet"`` (default) builds, in this order and without
repeats within a class (the first kind wins):

* ``name``   the display name;
* ``lemma``  every WordNet 3.0 lemma of the class's synset (``entry.wnid``; ``_`` → space), then
  ``entry.synonyms`` (the only lemmas of vocabularies without wnids);
* ``alias``  user aliases (a JSON ``{class_id: [alias, ...]}`` file, a TSV ``class_id<TAB>alias`` file,
  or a dict);
* ``plural`` plurals of the name and lemma forms (see :func:`pluralize`).

Each form carries a sorted subset of :data:`FLAGS`:

* ``shared``    the text is a form of two or more classes ("crane");
* ``ambiguous`` among WordNet's noun senses of the text (``wordnet().synsets(word, pos="n")``, which
  includes morphological bases, so "glasses" also finds glass), the class's own synset is one, and some
  other sense has a strictly higher lemma count (``Lemma.count()``, SemCor counts from ``cntlist.rev``)
  than the class's own sense ("mouse" of computer mouse: mouse.n.01 14 > 0). A text whose senses do not
  include the class's synset (display names like "crane bird") is not ambiguous. Plurals inherit the
  flag of their singular. Senses with equal counts (often all 0) do not make a form ambiguous;
* ``short``     fewer than 3 characters, or a function/very common word from ``vlm_classdata/data/stopwords.txt``
  ("ai", "can", "will"); plurals of short forms are short too.

``method="paper"`` keeps only the display names (no lemmas, plurals, aliases or flags).

Classes without a wnid are mapped to WordNet through their display name (first noun sense) for the
ambiguity flag only: that never adds lemmas. Without a WordNet installation such a vocabulary is still
built (English plural rules only, no ``ambiguous`` flag); a vocabulary with wnids needs WordNet.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassEntry, ClassVocabulary
from vlm_classdata.wordnet import WordNetMissingError, synset_from_wnid, wordnet

if TYPE_CHECKING:
    import polars
    from nltk.corpus.reader.wordnet import Synset

FLAGS = ("shared", "ambiguous", "short")
KINDS = ("name", "lemma", "alias", "plural")
METHODS = ("wordnet", "paper")
MIN_CHARS = 3

_SEP = regex.compile(r"[^\p{L}\p{N}]+")
_PAREN = regex.compile(r"\s*\([^()]*\)")
# "X of Y" forms pluralise X ("bird of prey" -> "birds of prey")
_OF_WORDS = frozenset({"of", "de", "des", "du"})
# Latin-looking word endings (a genus or species epithet not known to WordNet: "Lycaon pictus")
_LATIN_END = regex.compile(r"(?:us|um|a|ae|i|is|es|ii|or|ix|ex|ax|on|ensis|oides)$")


def normalize(text: str) -> str:
    """Lower-case; every run of characters that are not Unicode letters or numbers → one space; strip.

    ``"Tiger-Shark!"`` → ``"tiger shark"``; ``"colt's foot"`` → ``"colt s foot"``.
    """
    return _SEP.sub(" ", text.lower()).strip()


@dataclass(frozen=True)
class Form:
    """One surface form of one class."""

    text: str                 # normalized surface form, e.g. "tiger shark", "geese"
    class_id: str
    kind: str                 # "name" | "lemma" | "plural" | "alias"
    flags: tuple[str, ...]    # sorted subset of FLAGS
    note: str = ""            # why flagged, e.g. "shared with n03126707"


# ----- WordNet helpers (cached) ------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _exceptions() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """WordNet's noun exception list, inverted: ``{normalized singular: (normalized plurals)}``, and
    the set of normalized plurals it lists."""
    inverse: dict[str, list[str]] = {}
    plurals: set[str] = set()
    for plural, singulars in wordnet()._exception_map["n"].items():
        p = normalize(plural)
        if not p:
            continue
        plurals.add(p)
        for s in singulars:
            s = normalize(s)
            if s and s != p and p not in inverse.setdefault(s, []):
                inverse[s].append(p)
    return {k: tuple(sorted(v)) for k, v in inverse.items()}, frozenset(plurals)


@functools.lru_cache(maxsize=65536)
def _noun_senses(key: str) -> tuple[tuple[str, ...], tuple[Synset, ...]]:
    """``(the word and its morphological bases, noun synsets)`` of a WordNet lookup key (``_`` for spaces)."""
    wn = wordnet()
    word = key.lower()
    bases = tuple(dict.fromkeys([word, *wn._morphy(word, "n")]))
    return bases, tuple(wn.synsets(word, pos="n"))


@functools.lru_cache(maxsize=65536)
def _sense_count(synset: Synset, bases: tuple[str, ...]) -> int:
    """SemCor count of the lemma of ``synset`` named like one of ``bases`` (0 if none)."""
    return max((lemma.count() for lemma in synset.lemmas() if lemma.name().lower() in bases), default=0)


@functools.lru_cache(maxsize=65536)
def _is_noun(word: str) -> bool:
    return bool(wordnet().synsets(word, pos="n"))


@functools.lru_cache(maxsize=65536)
def _in_wordnet(word: str) -> bool:
    return bool(wordnet().synsets(word))


@functools.lru_cache(maxsize=65536)
def _noun_bases(word: str) -> tuple[str, ...]:
    return tuple(wordnet()._morphy(word, "n"))


def _more_frequent_sense(own: Synset, raw: str) -> tuple[Synset, int, int] | None:
    """``(other sense, its count, own count)`` when ``raw`` names ``own`` and a more frequent other sense."""
    keys = dict.fromkeys([raw.strip().replace(" ", "_"), normalize(raw).replace(" ", "_")])
    for key in keys:
        if not key:
            continue
        bases, senses = _noun_senses(key)
        if own not in senses:
            continue
        own_count = _sense_count(own, bases)
        best: tuple[Synset, int, int] | None = None
        for s in senses:
            if s != own:
                c = _sense_count(s, bases)
                if c > own_count and (best is None or c > best[1]):
                    best = (s, c, own_count)
        return best
    return None


# ----- plurals -----------------------------------------------------------------------------------
def _rule_plural(word: str) -> str:
    """English rules: s/x/z/ch/sh → +es; consonant + y → ies; otherwise +s."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _true_irregular(singular: str, plural: str) -> bool:
    """Whether ``plural`` is the only plural (goose/geese, wolf/wolves, ox/oxen), so that the regular
    rule would be wrong; else it is a listed alternative (camera/camerae) and the rule plural is kept."""
    if singular.endswith(("f", "fe")) and plural.endswith("ves"):
        return True
    if plural.endswith("en") and not singular.endswith("en"):
        return True
    if singular.endswith("ouse") and plural.endswith("ice"):
        return True
    return len(plural) == len(singular) and plural != singular and plural[0] == singular[0]


def _word_plurals(word: str, use_wordnet: bool) -> list[str]:
    if use_wordnet:
        inverse, _ = _exceptions()
        listed = list(inverse.get(word, ()))
        if listed:
            if any(_true_irregular(word, p) for p in listed):
                return listed
            # a learned alternative (camerae, busses, taxies): the regular plural first, except -o → -oes
            rule = [_rule_plural(word)]
            return list(dict.fromkeys(listed + rule if word.endswith("o") else rule + listed))
    return [_rule_plural(word)]


def _looks_plural(word: str, use_wordnet: bool) -> bool:
    """A head word that is (probably) already plural or invariant, so it gets no plural."""
    if use_wordnet and word in _exceptions()[1] and word not in _exceptions()[0]:
        return True
    if not word.endswith("s") or word.endswith(("ss", "us", "is", "as")):
        return False
    if word.endswith("es") or not use_wordnet:
        return True  # species, cerastes, Pyrenees; without WordNet: trunks, longlegs
    # "lens" is a singular WordNet noun; "trunks" reduces to trunk; unknown words ("longlegs") are skipped
    bases = _noun_bases(word)
    return not bases or any(b != word for b in bases)


def _is_binomial(raw: str, synset: Synset | None, use_wordnet: bool) -> bool:
    """Scientific (bi/tri)nomial like "Tinca tinca", "Carassius auratus", "Canis lupus tundrarum"."""
    words = raw.split()
    if not 2 <= len(words) <= 3:
        return False
    genus, rest = words[0], words[1:]
    if not (genus[:1].isupper() and genus[1:].islower() and genus.isalpha()):
        return False
    if not all(w.isalpha() and w.islower() for w in rest):
        return False
    if genus.lower() == rest[0]:
        return True  # tautonym: Tinca tinca, Constrictor constrictor
    if not use_wordnet:
        return bool(_LATIN_END.search(genus.lower()) and _LATIN_END.search(rest[-1]))
    if _is_noun(f"genus_{genus.lower()}"):
        return True
    if synset is not None:
        holonyms = {n.lower() for h in synset.member_holonyms() for n in h.lemma_names()}
        if genus.lower() in holonyms or f"genus_{genus.lower()}" in holonyms:
            return True
    # a genus WordNet does not know, with a Latin-looking epithet: "Holocanthus tricolor", "Lycaon pictus"
    return not _in_wordnet(genus.lower()) and bool(_LATIN_END.search(rest[-1]))


def pluralize(text: str, *, use_wordnet: bool = True) -> list[str]:
    """Plurals of a normalised form, most likely first; ``[]`` when it gets none.

    The whole form, then its head word (the last word, or the word before "of"/"de"/"des"/"du": "bird of
    prey" → "birds of prey"), is looked up in WordNet's noun exception list ("goose" → "geese", "wolf" →
    "wolves"); where that list gives only an alternative learned plural ("camera" → "camerae") the regular
    plural is added. Otherwise English rules apply (s/x/z/ch/sh → +es, consonant + y → ies, else +s).
    Heads that already look plural ("trunks", "potatoes", "species") or are not a word of letters get none.
    """
    text = normalize(text)
    words = text.split()
    if not words:
        return []
    if use_wordnet:
        inverse, _ = _exceptions()
        if len(words) > 1 and text in inverse:
            return list(inverse[text])
    at = len(words) - 1
    for i, w in enumerate(words[1:-1], start=1):
        if w in _OF_WORDS:
            at = i - 1
            break
    head = words[at]
    if len(head) < 2 or not head.isalpha() or _looks_plural(head, use_wordnet):
        return []
    return [" ".join([*words[:at], p, *words[at + 1:]]) for p in _word_plurals(head, use_wordnet)]


# ----- aliases and stoplist ------------------------------------------------------------------------
def load_aliases(aliases: str | Path | dict[str, Any], vocab: ClassVocabulary) -> dict[str, list[str]]:
    """``{class_id: [alias, ...]}`` from a dict, a ``.json`` file of that shape, or any other file as TSV
    (``class_id<TAB>alias``, more aliases in more columns; blank lines and ``#`` comments skipped).
    Unknown class ids raise :class:`UserError`."""
    if isinstance(aliases, dict):
        data: Any = aliases
        where = "aliases"
    else:
        path = Path(aliases).expanduser()
        where = f"aliases file {str(aliases)!r}"
        if path.suffix.lower() == ".json":
            data = read_user_json(path, "aliases file")
        else:
            if not path.is_file():
                raise UserError(f"{where} not found")
            data = {}
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                raise UserError(f"{where}: not UTF-8 text") from None
            for n, line in enumerate(lines, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                cid, *names = line.split("\t")
                names = [a.strip() for a in names if a.strip()]
                if not names:
                    raise UserError(f"{where} line {n}: expected 'class_id<TAB>alias[<TAB>alias...]'")
                data.setdefault(cid.strip(), []).extend(names)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object {{class_id: [alias, ...]}}")
    out: dict[str, list[str]] = {}
    for cid, value in data.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise UserError(f"{where}: aliases of {cid!r} must be a string or a list of strings")
        out[str(cid)] = values
    unknown = [c for c in out if c not in vocab]
    if unknown:
        raise UserError(f"{where}: unknown class ids for {vocab.dataset}: {', '.join(unknown[:5])}"
                        + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    return out


def stopwords() -> frozenset[str]:
    """The shipped stoplist (``vlm_classdata/data/stopwords.txt``), normalised."""
    text = resources.files("vlm_classdata.data").joinpath("stopwords.txt").read_text(encoding="utf-8")
    words = (normalize(line.split("#", 1)[0]) for line in text.splitlines())
    return frozenset(w for w in words if w)


# ----- building ----------------------------------------------------------------------------------
@dataclass
class _Draft:
    text: str
    kind: str
    raw: str                      # the original string (for WordNet lookups and the binomial test)
    source: _Draft | None = None  # the singular of a plural


def _class_synset(entry: ClassEntry) -> tuple[Synset | None, bool]:
    """``(synset, from_wnid)``: the wnid's synset, else the first noun sense of the display name."""
    if entry.wnid:
        try:
            return synset_from_wnid(entry.wnid), True
        except WordNetMissingError:
            raise
        except Exception:  # not a WordNet offset: fall back to the name
            pass
    for key in dict.fromkeys([entry.name.strip().replace(" ", "_"), normalize(entry.name).replace(" ", "_")]):
        if key:
            senses = _noun_senses(key)[1]
            if senses:
                return senses[0], False
    return None, False


def _drafts(entry: ClassEntry, synset: Synset | None, from_wnid: bool, aliases: Iterable[str],
            plurals: bool, use_wordnet: bool) -> list[_Draft]:
    seen: dict[str, _Draft] = {}

    def add(raw: str, kind: str, source: _Draft | None = None, text: str | None = None) -> None:
        text = normalize(raw) if text is None else text
        if text and text not in seen:
            seen[text] = _Draft(text, kind, raw, source)

    add(entry.name, "name")
    if from_wnid and synset is not None:
        for lemma in synset.lemma_names():
            add(lemma.replace("_", " "), "lemma")
    for syn in entry.synonyms:
        add(syn, "lemma")
    for alias in aliases:
        add(alias, "alias")
    if plurals:
        for d in [d for d in seen.values() if d.kind in ("name", "lemma")]:
            if _is_binomial(d.raw, synset, use_wordnet):
                continue
            stripped = _PAREN.sub("", d.raw).strip() or d.raw  # "kite (bird of prey)" -> kites
            for p in pluralize(stripped, use_wordnet=use_wordnet):
                add(p, "plural", d, p)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(seen.values(), key=lambda d: order[d.kind])  # stable: name, lemma, alias, plural


def _word_flags(d: _Draft, synset: Synset | None, stop: frozenset[str],
                use_wordnet: bool) -> list[tuple[str, str]]:
    """``[(flag, note)]`` for the "ambiguous" and "short" flags of a name, lemma or alias form."""
    out: list[tuple[str, str]] = []
    if synset is not None and use_wordnet:
        hit = _more_frequent_sense(synset, d.raw)
        if hit is not None:
            out.append(("ambiguous", f"other sense {hit[0].name()} more frequent ({hit[1]} > {hit[2]})"))
    if len(d.text) < MIN_CHARS:
        out.append(("short", f"short: fewer than {MIN_CHARS} characters"))
    elif d.text in stop:
        out.append(("short", "short: common English word (stoplist)"))
    return out


class Lexicon:
    """Surface forms of every class of a vocabulary (see the module docstring)."""

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
        self._texts = {cid: {f.text for f in fs} for cid, fs in self._by_class.items()}

    @classmethod
    def build(cls, vocab: ClassVocabulary, method: str = "wordnet", plurals: bool = True,
              aliases: str | Path | dict[str, list[str]] | None = None) -> Lexicon:
        """Forms of every class of ``vocab``; ``method`` "wordnet" (all forms, flagged) or "paper"
        (display names only). ``aliases``: a JSON/TSV file or ``{class_id: [alias, ...]}``."""
        if method not in METHODS:
            raise UserError(f"unknown lexicon method {method!r}; expected one of {', '.join(METHODS)}")
        if method == "paper":
            forms = [Form(t, e.class_id, "name", ()) for e in vocab if (t := normalize(e.name))]
            return cls(vocab, forms, method)
        alias_map = load_aliases(aliases, vocab) if aliases is not None else {}

        try:
            wordnet()
            use_wordnet = True
        except WordNetMissingError:
            if any(e.wnid for e in vocab):
                raise
            use_wordnet = False

        per_class: list[tuple[ClassEntry, Synset | None, list[_Draft]]] = []
        for e in vocab:
            synset, from_wnid = _class_synset(e) if use_wordnet else (None, False)
            per_class.append((e, synset, _drafts(e, synset, from_wnid, alias_map.get(e.class_id, ()), plurals,
                                                 use_wordnet)))

        owners: dict[str, list[str]] = {}
        for e, _, drafts in per_class:
            for d in drafts:
                owners.setdefault(d.text, []).append(e.class_id)
        stop = stopwords()

        forms: list[Form] = []
        for e, synset, drafts in per_class:
            word_flags = {id(d): _word_flags(d, synset, stop, use_wordnet) for d in drafts if d.source is None}
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

    def matches_label(self, class_id: str, text: str) -> bool:
        """Whether ``normalize(text)`` is one of the class's forms (False for non-text or unknown ids)."""
        if not isinstance(text, str):
            return False
        t = normalize(text)
        return bool(t) and t in self._texts.get(class_id, ())

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

