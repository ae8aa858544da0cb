"""Pair every ImageWikiQA question with images of its class, optionally under cyclic option shifts.

:func:`pair_images` scans one split of a source once, keeps the usable references of the questions' classes
(sorted by key, so the result does not depend on the source's scan order), and for each question draws
``per_question`` distinct images with ``sample_rng(seed, "pair", qid)``: a seeded shuffle of the class's
sorted refs, walked in order until enough usable images are found. Each candidate's bytes are read through
``source.read`` and checked with :func:`vlm_classdata.images.inspect_image` once (the verdict is shared by every
question of the class); an unusable image is counted under its reason and the next candidate takes its
place. Images whose mode is not RGB/L (CMYK, palette, 16-bit, ...) are re-encoded to RGB JPEG, as the
builders do for embedded images, and counted under ``converted_<reason>``.

Counter keys (what :func:`pair_images` returns beside the items):

* an image skip reason (``truncated``, ``zero_byte``, ``not_an_image``, ``unreadable``, ...): one per
  distinct image found unusable;
* ``converted_<reason>`` (``converted_mode_CMYK``, ...): one per distinct image re-encoded to RGB JPEG;
* ``too_few_images``: one per question that got fewer images than asked (it keeps what exists);
* ``no_images``: one per question dropped because its class has no usable image in the split.

With ``permutations = P > 1`` every (question, image) pair becomes ``P`` rows: row ``k`` shows the options
cyclically shifted right by ``k`` (``options[-k:] + options[:-k]``), so the correct option moves from index
``a`` to ``(a + k) % n`` — the rows circular evaluation groups together.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from builders.formats.mcq import letters
from builders.records import SampleRef, sample_rng
from builders.sources.base import Source
from imagewikiqa.records import Question
from vlm_classdata.errors import UserError
from vlm_classdata.images import inspect_image, to_rgb_jpeg
from vlm_classdata.progress import make_bar

__all__ = ["PairedItem", "pair_images", "shift_options"]


@dataclass
class PairedItem:
    """One benchmark row: a question, one image of its class, and the option order shown with it."""

    question: Question
    image_key: str
    image_bytes: bytes
    image_ext: str           # "jpg", "png", ... (from the image's content, not its file name)
    permutation: int         # 0 = the question's stored option order; k = cyclic shift right by k
    options: list[str]       # in this row's order
    answer_index: int        # index of the correct option in ``options``

    @property
    def class_id(self) -> str:
        """The question's (and so the image's) class."""
        return self.question.class_id

    @property
    def letter(self) -> str:
        """The correct option's letter in this row's order."""
        return letters(len(self.options))[self.answer_index]


def shift_options(options: Sequence[str], answer_index: int, k: int) -> tuple[list[str], int]:
    """``options`` shifted cyclically right by ``k`` and the correct option's new index ``(a + k) % n``."""
    n = len(options)
    k %= n
    return list(options[n - k:]) + list(options[:n - k]), (answer_index + k) % n


@dataclass
class _Usable:
    key: str
    data: bytes
    ext: str


def _check_args(questions: Sequence[Question], source: Source, split: str, per_question: int,
                permutations: int) -> None:
    if isinstance(per_question, bool) or not isinstance(per_question, int) or per_question < 1:
        raise UserError(f"per_question must be a positive integer, got {per_question!r}")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise UserError(f"permutations must be a positive integer, got {permutations!r}")
    if split not in source.splits():
        raise UserError(f"the source has no {split!r} split; found: {', '.join(source.splits()) or 'none'}")
    seen: set[str] = set()
    for q in questions:
        if q.qid in seen:
            raise UserError(f"question id {q.qid!r} occurs twice; question ids must be unique")
        seen.add(q.qid)
        if len(q.options) < 2 or not 0 <= q.answer_index < len(q.options):
            raise UserError(f"question {q.qid!r} needs at least two options and an answer index among them")
        if permutations > len(q.options):
            raise UserError(f"permutations {permutations} exceeds the {len(q.options)} options of question "
                            f"{q.qid!r} (cyclic shifts give at most one order per option)")


def _refs_by_class(source: Source, split: str, class_ids: set[str]) -> dict[str, list[SampleRef]]:
    """One scan: the usable (not scan-skipped) refs of the wanted classes, each list sorted by key."""
    out: dict[str, list[SampleRef]] = defaultdict(list)
    for ref in source.scan(split):
        if ref.skip is None and ref.class_id in class_ids:
            out[ref.class_id].append(ref)
    for refs in out.values():
        refs.sort(key=lambda r: (r.key, r.locator))
    return out


class _ImageCache:
    """Reads and checks each image at most once; remembers usable bytes and counts unusable ones."""

    def __init__(self, source: Source, counts: Counter) -> None:
        self.source = source
        self.counts = counts
        self.verdicts: dict[tuple[str, str], _Usable | None] = {}

    def load(self, refs: Iterable[SampleRef]) -> None:
        todo = [r for r in refs if (r.key, r.locator) not in self.verdicts]
        if not todo:
            return
        for ref, data, reason in self.source.read(todo):
            self.verdicts[(ref.key, ref.locator)] = self._check(ref, data, reason)
        for ref in todo:  # a source that yields fewer results than refs: count the rest as unreadable
            if (ref.key, ref.locator) not in self.verdicts:
                self.verdicts[(ref.key, ref.locator)] = self._check(ref, None, "unreadable")

    def _check(self, ref: SampleRef, data: bytes | None, reason: str | None) -> _Usable | None:
        if data is None:
            self.counts[reason or "unreadable"] += 1
            return None
        check = inspect_image(data)
        if check.skip:
            self.counts[check.skip] += 1
            return None
        if check.convert:
            try:
                data = to_rgb_jpeg(data)
            except Exception:  # PIL raises many types for data it cannot convert
                self.counts["unconvertible"] += 1
                return None
            self.counts[f"converted_{check.convert}"] += 1
            return _Usable(ref.key, data, "jpg")
        return _Usable(ref.key, data, check.ext)

    def get(self, ref: SampleRef) -> _Usable | None:
        return self.verdicts[(ref.key, ref.locator)]


def _draw(question: Question, refs: list[SampleRef], cache: _ImageCache, per_question: int,
          seed: int) -> list[_Usable]:
    """Up to ``per_question`` distinct usable images of the question's class, in the seeded order."""
    order = list(range(len(refs)))
    sample_rng(seed, "pair", question.qid).shuffle(order)
    chosen: list[_Usable] = []
    pos = 0
    while len(chosen) < per_question and pos < len(order):
        batch = [refs[i] for i in order[pos:pos + per_question - len(chosen)]]
        pos += len(batch)
        cache.load(batch)
        chosen.extend(u for u in (cache.get(r) for r in batch) if u is not None)
    return chosen


def pair_images(questions: Sequence[Question], source: Source, split: str = "val", per_question: int = 1,
                seed: int = 0, permutations: int = 1, progress: bool = False) -> tuple[list[PairedItem], Counter]:
    """Pair each question with ``per_question`` distinct images of its class from ``split`` of ``source``.

    Rows come in question order, then drawn-image order, then permutation ``0..permutations-1``. The result
    depends only on the questions, the split's refs and images, and ``seed`` (never on scan order). See the
    module docstring for the counter's keys. Bad arguments raise :class:`~vlm_classdata.errors.UserError`."""
    questions = list(questions)
    _check_args(questions, source, split, per_question, permutations)
    counts: Counter = Counter()
    refs = _refs_by_class(source, split, {q.class_id for q in questions})
    cache = _ImageCache(source, counts)
    items: list[PairedItem] = []
    with make_bar(len(questions), "pairing images", unit="q", disable=not progress) as bar:
        for q in questions:
            chosen = _draw(q, refs.get(q.class_id, []), cache, per_question, seed)
            bar.update(1)
            if not chosen:
                counts["no_images"] += 1
                continue
            if len(chosen) < per_question:
                counts["too_few_images"] += 1
            for image in chosen:
                for k in range(permutations):
                    options, answer = shift_options(q.options, q.answer_index, k)
                    items.append(PairedItem(q, image.key, image.data, image.ext, k, options, answer))
    return items, counts
