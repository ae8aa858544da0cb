"""The three tasks: ``instruct`` (training), ``open`` (open-world eval) and ``mcq`` (closed-set eval).

Every per-sample choice (template, distractors, their order) comes from
``sample_rng(seed, task, record.split, record.key)``, so an Example depends only on the seed and the
sample, never on record order or worker count. MCQ answer positions are assigned by the pipeline with
:func:`builders.formats.mcq.balanced_positions` and passed to :meth:`MCQTask.make`.

MCQ distractors are only ever valid ones (:mod:`vlm_classdata.distractors`: never a class that shares a name,
lemma or plural with the answer, a WordNet ancestor, descendant or same synset, or a curated equivalent):

* ``random`` draws ``k - 1`` of all valid classes per item (``rng.sample`` over the valid pool in vocabulary
  order, so a class with no invalid partner gets exactly the draws of earlier versions);
* ``hard`` draws ``k - 1`` per item from the class's hard pool: its ``HARD_POOL_FACTOR × (k - 1)`` (3×)
  WordNet-nearest valid classes (:meth:`vlm_classdata.distractors.DistractorPolicy.hard_pool`), so items of one class
  get different sets of near classes.
"""

from __future__ import annotations

import inspect
import random

from builders.formats.base import Example, Task
from builders.formats.mcq import MAX_LETTERS, MCQExample, format_options, letters
from builders.prompts import PromptRegistry
from builders.records import Record, sample_rng
from vlm_classdata.distractors import distractor_policy
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

DISTRACTOR_MODES = ("random", "hard")
HARD_POOL_FACTOR = 3  # hard mode draws k - 1 distractors from the nearest HARD_POOL_FACTOR * (k - 1) valid classes


def _entry(vocab: ClassVocabulary, record: Record):
    if record.class_id not in vocab:
        raise ValueError(f"record {record.key!r} has class id {record.class_id!r}, not in the build's vocabulary")
    return vocab[record.class_id]


def _template(prompts: PromptRegistry, set_name: str, rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    """A seeded paraphrase, or the canonical first template (eval questions default to it)."""
    return prompts.choose(set_name, rng) if paraphrase else prompts.first(set_name)


TRAIN_SPLIT = "train"  # the one split whose instruction rows are training data; every other split is for eval
EVAL_TEMPLATE_SET = "open"  # eval splits of instruct outputs ask this set's first (canonical) question


class InstructTask(Task):
    """Training conversations: a paraphrased "what is this" question answered with the class name.

    On every split but ``train`` the question is the canonical eval question (the first template of the
    ``open`` set) instead of a paraphrase, so a validation split of an instruction output is an eval set."""

    name = "instruct"
    #: the set whose first template eval splits ask (None: the task's own templates on every split)
    eval_template_set: str | None = EVAL_TEMPLATE_SET

    def __init__(self, vocab: ClassVocabulary, seed: int, prompts: PromptRegistry | None = None,
                 cot: bool = False) -> None:
        # --cot is for eval questions: training answers are bare class names with no reasoning to imitate,
        # so instruct ignores it (recorded in describe()) and a build mixing train and eval outputs works.
        self.vocab, self.seed = vocab, seed
        self.prompts = prompts if prompts is not None else PromptRegistry.load()
        self.cot = False
        self.cot_ignored = bool(cot)
        self.paraphrase = True
        self.template_set = "instruct"
        self.prompts.templates(self.template_set)  # unknown set fails now, not per sample
        self.prompts.templates(EVAL_TEMPLATE_SET)

    def make(self, record: Record, position: int | None = None) -> Example:
        entry = _entry(self.vocab, record)
        if self.eval_template_set is not None and record.split != TRAIN_SPLIT:
            tid, text = self.prompts.first(self.eval_template_set)
        else:
            rng = sample_rng(self.seed, self.name, record.split, record.key)
            tid, text = _template(self.prompts, self.template_set, rng, self.paraphrase)
        return Example(task=self.name, question=text, answer=entry.name, template_id=tid)

    def describe(self) -> dict:
        out = {"task": self.name, "seed": self.seed, "cot": self.cot, "paraphrase": self.paraphrase,
               "templates": {self.template_set: self.prompts.ids(self.template_set)}}
        if self.eval_template_set is not None:
            out["eval_splits"] = (f"every split but {TRAIN_SPLIT!r} asks the canonical eval question "
                                  f"{self.prompts.first(self.eval_template_set)[0]!r} (first of the "
                                  f"{self.eval_template_set!r} set)")
        if getattr(self, "cot_ignored", False):
            out["cot_ignored"] = "chain-of-thought applies to eval questions only"
        return out


class OpenQuestionTask(InstructTask):
    """Open-world eval question; the answer is the class display name (the grading label)."""

    name = "open"
    eval_template_set = None  # its own templates (canonical unless --paraphrase-eval) on every split

    def __init__(self, vocab: ClassVocabulary, seed: int, prompts: PromptRegistry | None = None,
                 cot: bool = False, paraphrase: bool = False) -> None:
        self.vocab, self.seed, self.cot, self.cot_ignored = vocab, seed, bool(cot), False
        self.paraphrase = bool(paraphrase)
        self.prompts = prompts if prompts is not None else PromptRegistry.load()
        self.template_set = "open_cot" if cot else "open"
        self.prompts.templates(self.template_set)


class MCQTask(Task):
    """Closed-set multiple choice: the true class among ``num_choices`` options.

    Up to 26 options are lettered ``A.``..``Z.`` and the answer is the letter; more options are listed one
    per line (``- name``) and the answer is the class name. The question is
    ``stem + "\\n" + options + "\\n" + instruction``.
    """

    name = "mcq"
    needs_positions = True

    def __init__(self, vocab: ClassVocabulary, seed: int, prompts: PromptRegistry | None = None,
                 num_choices: int = 4, distractors: str = "random", cot: bool = False,
                 paraphrase: bool = False) -> None:
        num_choices = int(num_choices)
        if num_choices < 2:
            raise UserError(f"--mcq-choices {num_choices}: a multiple-choice question needs at least 2 choices")
        if num_choices > len(vocab):
            raise UserError(f"--mcq-choices {num_choices} exceeds the {len(vocab)} classes in this build")
        if distractors not in DISTRACTOR_MODES:
            raise UserError(f"unknown distractor mode {distractors!r}; choose from {', '.join(DISTRACTOR_MODES)}")
        self.vocab, self.seed, self.cot, self.paraphrase = vocab, seed, bool(cot), bool(paraphrase)
        self.prompts = prompts if prompts is not None else PromptRegistry.load()
        self.num_choices = num_choices
        self.num_positions = min(num_choices, len(vocab))
        self.distractors = distractors
        self.lettered = num_choices <= MAX_LETTERS
        self.stem_set = "mcq"
        if self.lettered:
            self.instruction_set = "mcq_cot_instruction" if cot else "mcq_instruction"
        else:
            self.instruction_set = "list_cot_instruction" if cot else "list_instruction"
        self.prompts.templates(self.stem_set)
        self.prompts.templates(self.instruction_set)
        self.policy = distractor_policy(vocab)
        need = num_choices - 1
        short = [cid for cid in vocab.ids if self.policy.valid_count(cid) < need]
        if short:
            first = vocab[short[0]]
            raise UserError(f"--mcq-choices {num_choices}: {len(short)} class(es) have fewer than {need} valid "
                            f"distractors, e.g. {first.name!r} ({first.class_id}) has "
                            f"{self.policy.valid_count(first.class_id)} (the others are its synonyms, ancestors, "
                            f"descendants or share a name with it); use fewer choices")
        self._hard: dict[str, tuple[str, ...]] = {}
        if distractors == "hard":
            self._hard = {cid: tuple(self.policy.hard_pool(cid, HARD_POOL_FACTOR * need)) for cid in vocab.ids}

    def _pick_distractors(self, class_id: str, rng: random.Random) -> tuple[list[str], int]:
        """``k - 1`` valid distractors for one item and the size of the pool they were drawn from."""
        need = self.num_choices - 1
        if self.distractors == "hard":
            pool = self._hard[class_id]
            picked, size = rng.sample(pool, need), len(pool)
        else:
            picked, size = self.policy.sample_valid(class_id, need, rng), self.policy.valid_count(class_id)
        rng.shuffle(picked)
        return picked, size

    def make(self, record: Record, position: int | None = None) -> MCQExample:
        if position is None:
            raise ValueError("MCQTask.make needs the pre-assigned answer position (see balanced_positions)")
        if not 0 <= position < self.num_choices:
            raise ValueError(f"answer position {position} outside 0..{self.num_choices - 1}")
        entry = _entry(self.vocab, record)
        rng = sample_rng(self.seed, self.name, record.split, record.key)
        stem_id, stem = _template(self.prompts, self.stem_set, rng, self.paraphrase)
        instr_id, instruction = _template(self.prompts, self.instruction_set, rng, self.paraphrase)
        option_ids, pool_size = self._pick_distractors(entry.class_id, rng)
        option_ids.insert(position, entry.class_id)
        options = [self.vocab[cid].name for cid in option_ids]
        question = f"{stem}\n{format_options(options, self.lettered)}\n{instruction}"
        letter = letters(self.num_choices)[position] if self.lettered else None
        return MCQExample(task=self.name, question=question, answer=letter if letter else entry.name,
                          template_id=f"{stem_id}+{instr_id}", stem=stem, options=options, answer_index=position,
                          answer_letter=letter, option_class_ids=option_ids, distractor_mode=self.distractors,
                          distractor_pool_size=pool_size,
                          distractor_relations=[self.policy.relation(entry.class_id, c) for c in option_ids])

    def describe(self) -> dict:
        return {"task": self.name, "seed": self.seed, "cot": self.cot, "paraphrase": self.paraphrase,
                "num_choices": self.num_choices,
                "distractors": self.distractors, "lettered": self.lettered,
                "distractor_policy": {**self.policy.describe(),
                                      "draw": ("k-1 per item from the nearest "
                                               f"{HARD_POOL_FACTOR}*(k-1) valid classes (WordNet)"
                                               if self.distractors == "hard" else
                                               "k-1 per item from all valid classes")},
                "answer": "letter" if self.lettered else "class name",
                "templates": {self.stem_set: self.prompts.ids(self.stem_set),
                              self.instruction_set: self.prompts.ids(self.instruction_set)}}


TASKS: dict[str, type[Task]] = {"instruct": InstructTask, "open": OpenQuestionTask, "mcq": MCQTask}


def make_task(name: str, vocab: ClassVocabulary, seed: int, prompts: PromptRegistry | None = None,
              **options) -> Task:
    """Build a task by name (``instruct``, ``open``, ``mcq``); options go to its constructor."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    cls = TASKS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "vocab", "seed", "prompts")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"task {name!r} has no option {', '.join(unknown)}; its options: {', '.join(allowed)}")
    return cls(vocab, seed, prompts, **options)
