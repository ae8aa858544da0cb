"""The project's one multiple-choice answer parser and one synonym-aware label matcher.

* :func:`parse_choice` turns a model's reply to a lettered multiple-choice question into an option index
  (``ParsedAnswer``). An unparseable, hedged or refused reply has ``index=None``: it is "unknown", never
  "wrong".
* :class:`LabelMatcher` decides whether an open-ended reply names a class, using every form of the class
  in a :class:`~vlm_classdata.lexicon.Lexicon` (display name, WordNet lemmas, plurals, aliases), whole-word
  leftmost-longest matching against the forms of *all* classes (so "a tiger shark" does not count as
  "tiger"), and rapidfuzz ``fuzz.ratio`` ≥ :data:`FUZZY_THRESHOLD` (0-100) for typos.

Both work on text normalised with :func:`vlm_classdata.lexicon.normalize`. The parser lives in
:mod:`~vlm_classdata.answers.choices` (its patterns in :mod:`~vlm_classdata.answers.patterns`), the judge in
:mod:`~vlm_classdata.answers.labels`; import either from here. :class:`VerdictJudge` (import it from
:mod:`~vlm_classdata.answers.verdicts`: its WordNet hierarchy needs numpy and rapidfuzz, which commands that only
parse or match, e.g. ``corpora_stats count`` through the report's judge, should not load) builds on LabelMatcher and WordNet to say how a wrong open reply
relates to the label (more specific, more generic, sibling, another class, out of vocabulary, refusal).
"""

from vlm_classdata.answers.choices import REFUSALS, ParsedAnswer, parse_choice, parse_options
from vlm_classdata.answers.labels import FUZZY_THRESHOLD, LabelMatch, LabelMatcher

__all__ = ["FUZZY_THRESHOLD", "REFUSALS", "LabelMatch", "LabelMatcher", "ParsedAnswer", "parse_choice", "parse_options"]
