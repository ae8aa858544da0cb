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

The parts: :mod:`~vlm_classdata.lexicon.text` (``normalize``, the stoplist), :mod:`~vlm_classdata.lexicon.plurals`,
:mod:`~vlm_classdata.lexicon.wordnet_senses` (cached WordNet lookups), :mod:`~vlm_classdata.lexicon.aliases`,
:mod:`~vlm_classdata.lexicon.forms` (a form, and the drafting and flagging of one class's forms),
:mod:`~vlm_classdata.lexicon.cache` (built lexicons kept in ``cache_dir()/lexicon/``, keyed by everything that
decides the forms, so a warm ``Lexicon.build`` reads a file instead of loading WordNet) and
:mod:`~vlm_classdata.lexicon.table` (the :class:`Lexicon`); import their public names from here.
"""

from vlm_classdata.lexicon.aliases import load_aliases
from vlm_classdata.lexicon.forms import FLAGS, KINDS, METHODS, MIN_CHARS, Form
from vlm_classdata.lexicon.plurals import pluralize
from vlm_classdata.lexicon.table import Lexicon
from vlm_classdata.lexicon.text import normalize, stopwords

__all__ = ["FLAGS", "KINDS", "METHODS", "MIN_CHARS", "Form", "Lexicon", "load_aliases", "normalize", "pluralize",
           "stopwords"]
