"""Learned blind solvers for multiple-choice items, and AFLite-style adversarial filtering.

A *blind* solver sees the question text and the options, never the image. If one can be trained to answer
questions of classes it has never seen, the set carries an answer shortcut (the correct option is longer,
rarer, closer to the question, the odd one out, a string that is "usually the answer"...), and the
accuracy of a vision-language model on it says little about seeing. This module measures that and removes
the questions that carry it. It works on any list of multiple-choice items (ImageWikiQA questions, the
builders' MCQ rows): :func:`mcq_items` reads any objects with ``question``, ``options``, ``answer_index``
and ``class_id`` (or ``group``).

Solvers (scikit-learn; :data:`SOLVERS`) score every (question, option) pair as "correct or not" and answer
with the option of highest probability (ties share the credit: ``1/t`` when the correct option is among
``t`` tied best). Pair features (:func:`build_features`), from the question text and the options only:

* option length: characters and words, their rank, z-score and longest/shortest flags among the options;
* option position (one-hot and relative), casing, digits, punctuation;
* WordNet (:func:`vlm_classdata.wordnet.wordnet`): whether the option (or its last word) is a noun lemma, its
  depth, number of senses and SemCor lemma count (an offline word-frequency proxy);
* similarity to the question: content-token overlap, rapidfuzz ``token_set_ratio``/``partial_ratio``;
* similarity among options (the odd one out): mean/max rapidfuzz ratio and token overlap with the others;
* answer prior: how often the same option text is the answer vs a distractor in OTHER classes' training
  questions (computed on the training fold only, and for training rows without their own class, so the
  statistic never sees the question it scores);
* every dense feature also centred on its question's mean (so features compare options of one question);
* ``logistic`` also gets hashed character n-grams and words of the option and hashed (question word,
  option word) pairs (:class:`sklearn.feature_extraction.text.HashingVectorizer`).

Held-out accuracy is measured by cross-validation grouped by class
(:class:`sklearn.model_selection.GroupKFold`, shuffled with a seed), so a solver never sees a question of
a test class; the 95% confidence interval is a percentile bootstrap over classes (questions of one class
are not independent). :func:`adversarial_filter` is AFLite (Le Bras et al., 2020) on these solvers.

The parts: :mod:`~vlm_classdata.blind.items`, :mod:`~vlm_classdata.blind.features`,
:mod:`~vlm_classdata.blind.solvers` (cross-validation, accuracy) and :mod:`~vlm_classdata.blind.filtering`;
import their public names from here.
"""


from vlm_classdata.blind.features import Features, build_features
from vlm_classdata.blind.filtering import DEFAULT_MARGIN, FilterResult, adversarial_filter
from vlm_classdata.blind.items import MCQ, chance, mcq_items
from vlm_classdata.blind.solvers import MIN_GROUPS, SOLVERS, SolverScores, blind_accuracy, held_out_scores

__all__ = [
    "DEFAULT_MARGIN", "MIN_GROUPS", "SOLVERS", "Features", "FilterResult", "MCQ", "SolverScores", "adversarial_filter",
    "blind_accuracy", "build_features", "chance", "held_out_scores", "mcq_items",
]
