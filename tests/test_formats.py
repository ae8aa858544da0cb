"""Prompt registry, MCQ helpers, tasks, WordNet neighbours and row layouts."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest

from builders.formats.base import Example
from builders.formats.layouts import LAYOUTS, layout_for, mcq_stem
from builders.formats.mcq import balanced_positions, format_options, letters
from builders.formats.tasks import InstructTask, MCQTask, OpenQuestionTask, make_task
from builders.prompts import TASK_SETS, PromptRegistry
from builders.records import Record
from vlm_classdata.errors import UserError
from vlm_classdata.hierarchy import class_neighbors, entry_synset
from vlm_classdata.vocabulary import ClassVocabulary

DOGS = ["n02085620", "n02085782", "n02086240", "n02088364", "n02099601", "n02106662"]  # Chihuahua, ...
BIRDS = ["n01530575", "n01531178", "n01532829", "n02009912", "n02012849", "n02017213"]  # ..., crane bird
VEHICLES = ["n02701002", "n02814533", "n03126707", "n03417042", "n03769881", "n04037443"]  # ..., crane
FISH = ["n01440764", "n01443537"]
MIXED_WNIDS = DOGS + BIRDS + VEHICLES + FISH


@pytest.fixture(scope="module")
def prompts() -> PromptRegistry:
    return PromptRegistry.load()


@pytest.fixture(scope="module")
def inet() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k")


@pytest.fixture(scope="module")
def mixed(inet) -> ClassVocabulary:
    return inet.subset(MIXED_WNIDS)


def make_record(vocab: ClassVocabulary, class_id: str, key: str, split: str = "val", **meta) -> Record:
    e = vocab[class_id]
    return Record(key=key, split=split, class_id=class_id, label=e.index, class_name=e.name,
                  image_bytes=b"\xff\xd8fake", image_ext="jpg", image_path=f"{split}/{class_id}/{key}.JPEG",
                  width=48, height=40, meta={"dataset": "imagenet1k", **meta})


def records_for(vocab: ClassVocabulary, n: int, split: str = "val") -> list[Record]:
    ids = vocab.ids
    return [make_record(vocab, ids[i % len(ids)], f"img_{i:05d}", split) for i in range(n)]


# ----- prompt registry ---------------------------------------------------------------------------
def test_bundled_registry_sets_and_ids(prompts):
    desc = prompts.describe()["sets"]
    for name in TASK_SETS:
        assert desc[name], name
    ids = [t["id"] for items in desc.values() for t in items]
    assert len(ids) == len(set(ids))
    assert prompts.first("instruct") == ("instruct-01", "What type of object is in the photo?")
    assert len(prompts.templates("instruct")) >= 7
    assert prompts.first("mcq_instruction")[1] == "Answer with the option's letter from the given choices directly."
    assert prompts.first("list_instruction")[1] == "Answer with the exact class name from the list."
    assert all('"Answer: <letter>"' in t for _, t in prompts.templates("mcq_cot_instruction"))
    assert all('"Answer: <name>"' in t and "step by step" in t for _, t in prompts.templates("open_cot"))
    assert all("<image>" not in t for items in desc.values() for t in (x["text"] for x in items))
    # choose is driven only by the rng passed in
    a = [prompts.choose("instruct", random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    picked = {prompts.choose("instruct", random.Random(s))[0] for s in range(200)}
    assert picked == set(prompts.ids("instruct"))


def test_registry_errors(tmp_path, prompts):
    with pytest.raises(UserError, match="unknown prompt template set"):
        prompts.choose("nope", random.Random(0))
    with pytest.raises(UserError, match="not found"):
        PromptRegistry.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        PromptRegistry.load(bad)
    bad.write_text(json.dumps({"sets": {"instruct": [{"id": "x"}]}}))
    with pytest.raises(UserError, match="non-empty string"):
        PromptRegistry.load(bad)
    bad.write_text(json.dumps({"sets": {"instruct": []}}))
    with pytest.raises(UserError, match="non-empty list"):
        PromptRegistry.load(bad)
    bad.write_text(json.dumps({"sets": {"extra": [{"id": "open-01", "text": "clash"}]}}))
    with pytest.raises(UserError, match="used twice"):
        PromptRegistry.load(bad)


def test_user_prompts_override_and_extend(tmp_path, mixed):
    user = tmp_path / "my_prompts.json"
    user.write_text(json.dumps({"sets": {
        "instruct": [{"id": "mine-1", "text": "Which breed or species is this?"}],
        "shouting": [{"id": "loud-1", "text": "WHAT IS THIS?"}]}}))
    reg = PromptRegistry.load(user)
    assert reg.templates("instruct") == [("mine-1", "Which breed or species is this?")]
    assert reg.first("shouting") == ("loud-1", "WHAT IS THIS?")
    assert reg.first("mcq_instruction") == PromptRegistry.load().first("mcq_instruction")  # kept
    assert reg.describe()["sources"][-1] == str(user)
    ex = InstructTask(mixed, 0, reg).make(make_record(mixed, "n02085620", "k1", "train"))
    assert (ex.question, ex.template_id, ex.answer) == ("Which breed or species is this?", "mine-1", "Chihuahua")
    # the plain {set: [...]} shape works too
    user.write_text(json.dumps({"open": [{"id": "o1", "text": "Name it."}]}))
    assert PromptRegistry.load(user).templates("open") == [("o1", "Name it.")]


# ----- MCQ helpers -------------------------------------------------------------------------------
@pytest.mark.parametrize("n,k", [(0, 4), (1, 4), (3, 4), (4, 4), (10, 4), (1001, 4), (999, 26), (37, 30),
                                 (5, 1), (50000, 10), (7, 2), (2, 1000)])
def test_balanced_positions_exact(n, k):
    pos = balanced_positions(n, k, seed=3, split="val")
    assert len(pos) == n
    assert all(0 <= p < k for p in pos)
    counts = Counter(pos)
    full = [counts.get(p, 0) for p in range(k)]
    assert max(full) - min(full) <= 1
    assert sum(full) == n
    assert pos == balanced_positions(n, k, seed=3, split="val")


def test_balanced_positions_seeded_and_unbiased():
    a = balanced_positions(400, 4, 0, "val")
    assert a != balanced_positions(400, 4, 1, "val")
    assert a != balanced_positions(400, 4, 0, "test")
    assert a != sorted(a)
    # which letters receive the n % k extras is random, not always A..
    extras = {tuple(sorted(p for p, c in Counter(balanced_positions(6, 4, s, "val")).items() if c == 2))
              for s in range(40)}
    assert len(extras) > 1
    with pytest.raises(ValueError):
        balanced_positions(3, 0, 0, "val")


def test_letters_and_format_options():
    assert letters(4) == ["A", "B", "C", "D"]
    assert "".join(letters(26)) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    with pytest.raises(ValueError):
        letters(27)
    assert format_options(["tench", "goldfish"], True) == "A. tench\nB. goldfish"
    assert format_options(["tench", "goldfish"], False) == "- tench\n- goldfish"


# ----- tasks -------------------------------------------------------------------------------------
def test_instruct_and_open(mixed, prompts):
    rec = make_record(mixed, "n02012849", "crane_001", "train")
    inst = make_task("instruct", mixed, 5, prompts)
    ex = inst.make(rec)
    assert isinstance(inst, InstructTask) and ex.task == "instruct"
    assert ex.answer == "crane bird"
    assert (ex.template_id, ex.question) in prompts.templates("instruct")
    assert ex.options == [] and ex.answer_letter is None
    assert inst.make(rec) == InstructTask(mixed, 5, prompts).make(rec)
    questions = {inst.make(make_record(mixed, "n02012849", f"k{i}", "train")).template_id for i in range(100)}
    assert len(questions) > 3  # paraphrases vary per sample
    op = make_task("open", mixed, 5, prompts)
    assert isinstance(op, OpenQuestionTask)
    ex = op.make(rec)
    assert ex.task == "open" and ex.answer == "crane bird"
    assert (ex.template_id, ex.question) in prompts.templates("open")
    cot = OpenQuestionTask(mixed, 5, prompts, cot=True).make(rec)
    assert cot.template_id.startswith("open_cot-") and "Answer: <name>" in cot.question
    assert op.describe()["templates"] == {"open": prompts.ids("open")}
    ignored = InstructTask(mixed, 5, prompts, cot=True)  # cot is for eval questions only
    assert ignored.make(rec) == inst.make(rec) and "cot_ignored" in ignored.describe()
    assert "cot_ignored" not in inst.describe()
    # every split but train asks the canonical eval question (first of the open set), never a paraphrase
    for split in ("validation", "val", "test"):
        evals = [inst.make(make_record(mixed, "n02012849", f"k{i}", split)) for i in range(20)]
        assert {(e.template_id, e.question) for e in evals} == {prompts.first("open")}
    assert "open-01" in inst.describe()["eval_splits"] and "eval_splits" not in op.describe()


def test_make_task_errors(mixed, prompts):
    with pytest.raises(UserError, match="unknown task"):
        make_task("caption", mixed, 0, prompts)
    with pytest.raises(UserError, match="no option"):
        make_task("instruct", mixed, 0, prompts, num_choices=4)
    with pytest.raises(UserError, match="--mcq-choices 30 exceeds the 6 classes in this build"):
        make_task("mcq", mixed.subset(DOGS), 0, prompts, num_choices=30)
    with pytest.raises(UserError):
        MCQTask(mixed, 0, prompts, num_choices=1)
    with pytest.raises(UserError, match="distractor"):
        MCQTask(mixed, 0, prompts, distractors="nearest")
    task = MCQTask(mixed, 0, prompts)
    with pytest.raises(ValueError):
        task.make(make_record(mixed, "n02085620", "k"), None)
    with pytest.raises(ValueError):
        task.make(make_record(mixed, "n02085620", "k"), 4)


def check_mcq(task: MCQTask, vocab: ClassVocabulary, rec: Record, pos: int, ex: Example) -> None:
    k = task.num_choices
    assert len(ex.options) == k and len(set(ex.options)) == k
    assert all(vocab.by_name(o) is not None for o in ex.options)
    assert ex.options[pos] == rec.class_name
    assert ex.answer_index == pos
    lines = ex.question.split("\n")
    assert len(lines) == k + 2
    assert (ex.template_id.split("+")[0], lines[0]) in task.prompts.templates("mcq")
    if task.lettered:
        assert ex.answer == ex.answer_letter == letters(k)[pos]
        assert lines[1:-1] == [f"{ch}. {o}" for ch, o in zip(letters(k), ex.options, strict=True)]
    else:
        assert ex.answer == rec.class_name and ex.answer_letter is None
        assert lines[1:-1] == [f"- {o}" for o in ex.options]


def test_mcq_random_positions_letters_and_determinism(mixed, prompts):
    task = MCQTask(mixed, 11, prompts, num_choices=4)
    assert task.needs_positions and task.num_positions == 4
    recs = records_for(mixed, 60)
    positions = balanced_positions(len(recs), task.num_positions, 11, "val")
    out = [task.make(r, p) for r, p in zip(recs, positions, strict=True)]
    for r, p, ex in zip(recs, positions, out, strict=True):
        check_mcq(task, mixed, r, p, ex)
        assert ex.question.split("\n")[-1] in dict(prompts.templates("mcq_instruction")).values()
    # same seed, fresh task, reversed order -> identical examples
    again = MCQTask(mixed, 11, prompts, num_choices=4)
    rev = {r.key: again.make(r, p) for r, p in reversed(list(zip(recs, positions, strict=True)))}
    assert [rev[r.key] for r in recs] == out
    # a different seed changes distractors or templates
    other = MCQTask(mixed, 12, prompts, num_choices=4)
    assert [other.make(r, p) for r, p in zip(recs, positions, strict=True)] != out
    # random distractors cover the other classes
    seen = {o for ex in out for o in ex.options}
    assert len(seen) == len(mixed)
    assert task.describe()["templates"]["mcq_instruction"] == prompts.ids("mcq_instruction")


def test_mcq_26_lettered_and_30_listed(inet, prompts):
    v40 = inet.subset(inet.ids[:40])
    t26 = MCQTask(v40, 1, prompts, num_choices=26)
    rec = make_record(v40, v40.ids[7], "x1")
    ex = t26.make(rec, 25)
    check_mcq(t26, v40, rec, 25, ex)
    assert ex.answer == "Z" and ex.question.split("\n")[26].startswith("Z. ")
    t30 = MCQTask(v40, 1, prompts, num_choices=30)
    assert not t30.lettered and t30.num_positions == 30
    ex = t30.make(rec, 29)
    check_mcq(t30, v40, rec, 29, ex)
    assert ex.question.split("\n")[-1] in dict(prompts.templates("list_instruction")).values()
    assert ex.answer_index == 29 and ex.options[-1] == rec.class_name
    cot = MCQTask(v40, 1, prompts, num_choices=30, cot=True).make(rec, 0)
    assert '"Answer: <name>"' in cot.question.split("\n")[-1]
    with pytest.raises(UserError, match="at most 26"):
        layout_for("vlmevalkit")(ex, make_record(v40, v40.ids[7], "x1", index=0))


def test_mcq_cot_changes_instruction(mixed, prompts):
    rec = make_record(mixed, "n01440764", "fish_1")
    plain = MCQTask(mixed, 2, prompts).make(rec, 1)
    cot = MCQTask(mixed, 2, prompts, cot=True).make(rec, 1)
    assert plain.options == cot.options and plain.answer == cot.answer == "B"
    assert plain.question.split("\n")[:-1] == cot.question.split("\n")[:-1]
    assert cot.question.split("\n")[-1] in dict(prompts.templates("mcq_cot_instruction")).values()
    assert "Answer: <letter>" in cot.question and "Answer: <letter>" not in plain.question
    assert cot.template_id.split("+")[1].startswith("mcq_cot_instruction-")


# ----- WordNet neighbours ------------------------------------------------------------------------
def test_hard_distractors_follow_wordnet(mixed, prompts):
    nb = class_neighbors(mixed)
    assert set(nb["n02085620"][:5]) == set(DOGS) - {"n02085620"}
    crane_bird = nb["n02012849"]
    assert set(crane_bird[:5]) == set(BIRDS) - {"n02012849"}
    assert crane_bird.index("n03126707") > 5  # the construction crane is far away
    assert set(nb["n03126707"][:5]).isdisjoint(BIRDS + DOGS)
    task = MCQTask(mixed, 0, prompts, num_choices=4, distractors="hard")
    # hard pool: the 3 * (4 - 1) = 9 nearest valid classes, the 5 other dogs first; the construction crane
    # shares the form "crane" with the crane bird, so it is never a distractor for it
    chi_pool = task.policy.hard_pool("n02085620", 9)
    assert set(chi_pool[:5]) == set(DOGS) - {"n02085620"} and len(chi_pool) == 9
    crane_pool = task.policy.hard_pool("n02012849", 9)
    assert set(crane_pool[:5]) == set(BIRDS) - {"n02012849"} and "n03126707" not in crane_pool
    for i, pos in enumerate([0, 1, 2, 3]):
        ex = task.make(make_record(mixed, "n02085620", f"chi_{i}"), pos)
        check_mcq(task, mixed, make_record(mixed, "n02085620", f"chi_{i}"), pos, ex)
        assert set(ex.option_class_ids) - {"n02085620"} <= set(chi_pool)
        assert ex.distractor_mode == "hard" and ex.distractor_pool_size == 9
        ex = task.make(make_record(mixed, "n02012849", f"crane_{i}"), pos)
        assert set(ex.option_class_ids) - {"n02012849"} <= set(crane_pool)
    # hard distractors are drawn per sample from the pool (deliberately changed: they were one fixed set)
    sets = {frozenset(task.make(make_record(mixed, "n02085620", f"c{i}"), 0).options) for i in range(20)}
    assert len(sets) > 5


def test_class_neighbors_imagenet_1000_timed(inet):
    start = time.perf_counter()
    nb = class_neighbors(inet)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"class_neighbors took {elapsed:.1f}s"
    assert len(nb) == 1000
    for cid in ("n01440764", "n02085620", "n04037443"):
        assert len(nb[cid]) == 999 and set(nb[cid]) == set(inet.ids) - {cid}
    names = {inet[c].name for c in nb["n02085620"][:10]}
    assert {"Maltese", "Pekingese", "Shih Tzu"} & names
    assert inet["n01443537"].name in {inet[c].name for c in nb["n01440764"][:5]}  # tench ~ goldfish
    start = time.perf_counter()
    assert class_neighbors(inet) == nb  # cached
    assert time.perf_counter() - start < 2


def test_class_neighbors_fallback_without_wordnet(prompts):
    cars = ClassVocabulary.bundled("stanford_cars")
    assert all(entry_synset(e) is None for e in cars.entries[:20])
    nb = class_neighbors(cars)
    assert len(nb) == len(cars)
    hummer = cars.entries[0]
    assert hummer.name == "2000 AM General Hummer SUV"
    assert "hummer" in cars[nb[hummer.class_id][0]].name.lower()
    task = MCQTask(cars, 0, prompts, num_choices=4, distractors="hard")
    ex = task.make(make_record(cars, hummer.class_id, "car1"), 2)
    assert ex.options[2] == hummer.name and len(set(ex.options)) == 4


def test_mixed_wordnet_and_plain_names():
    vocab = ClassVocabulary.from_names(["golden retriever", "beagle", "sparrow", "Zorblax 3000 gadget"])
    nb = class_neighbors(vocab)
    assert nb["0"][0] == "1"  # two dogs
    assert nb["0"][-1] == "3"  # no synset: ranked after every WordNet-comparable class
    assert sorted(nb["3"]) == ["0", "1", "2"]


# ----- layouts -----------------------------------------------------------------------------------
def test_layouts_exact_keys(mixed, prompts):
    rec = make_record(mixed, "n02085620", "chi_7", index=41)
    ins = InstructTask(mixed, 0, prompts).make(rec)
    row = LAYOUTS["llava_conversation"](ins, rec)
    assert row == {"id": "chi_7", "image": "val/n02085620/chi_7.JPEG", "conversations": [
        {"from": "human", "value": "<image>\n" + ins.question}, {"from": "gpt", "value": "Chihuahua"}]}
    row = layout_for("chat_messages")(ins, rec)
    assert list(row) == ["id", "messages", "label", "class_id", "class_name"]
    assert row["messages"][0] == {"role": "user", "content": [{"type": "image", "text": None},
                                                               {"type": "text", "text": ins.question}]}
    assert row["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "Chihuahua"}]}
    assert (row["label"], row["class_id"], row["class_name"]) == (rec.label, "n02085620", "Chihuahua")

    op = OpenQuestionTask(mixed, 0, prompts).make(rec)
    row = layout_for("llava_eval_question")(op, rec)
    assert row == {"question_id": "chi_7", "image": rec.image_path, "text": op.question, "question": op.question,
                   "answer": "Chihuahua", "label": rec.label, "class_id": "n02085620", "class_name": "Chihuahua"}
    flat = layout_for("eval_flat")(op, rec)
    assert flat == {"id": "chi_7", **{k: v for k, v in row.items() if k not in ("question_id", "image")}}

    mcq = MCQTask(mixed, 0, prompts, num_choices=5).make(rec, 3)
    row = layout_for("llava_eval_question")(mcq, rec)
    # flat columns (one vocabulary), then the MCQ columns and the distractor record
    assert list(row) == ["question_id", "image", "text", "question", "answer", "label", "class_id", "class_name",
                         "options", "answer_index", "index", "option_class_ids", "distractor_mode",
                         "distractor_pool_size", "distractor_relations"]
    assert row["answer"] == "D" and row["options"][3] == "Chihuahua" and row["answer_index"] == 3
    assert row["label"] == rec.label and row["index"] == 41 and "category" not in row
    assert row["question"] == mcq_stem(mcq) and row["text"].startswith(row["question"] + "\nA. ")
    assert [mixed[c].name for c in row["option_class_ids"]] == row["options"]
    assert row["distractor_mode"] == "random" and row["distractor_pool_size"] == len(mixed) - 1
    assert row["distractor_relations"][3] == "answer"
    assert set(row["distractor_relations"][:3] + row["distractor_relations"][4:]) <= {"sibling", "cousin", "unrelated"}
    flat = layout_for("eval_flat")(mcq, rec)
    assert flat == {"id": "chi_7", **{k: v for k, v in row.items() if k not in ("question_id", "image")}}
    hf_row = layout_for("chat_messages")(mcq, rec)
    assert list(hf_row) == ["id", "messages", "label", "class_id", "class_name", "option_class_ids",
                            "distractor_mode", "distractor_pool_size", "distractor_relations"]
    assert {k: hf_row[k] for k in list(hf_row)[5:]} == {k: row[k] for k in list(row)[11:]}

    row = layout_for("vlmevalkit")(mcq, rec)
    assert list(row) == ["index", "question", "A", "B", "C", "D", "E", "answer", "category"]
    assert row["index"] == 41 and isinstance(row["index"], int)
    assert row["question"] == mcq_stem(mcq) == mcq.question.split("\n")[0]
    assert "A." not in row["question"] and "letter" not in row["question"]
    assert [row[ch] for ch in "ABCDE"] == mcq.options
    assert row["answer"] == "D" and row["D"] == "Chihuahua" and row["category"] == "Chihuahua"
    with pytest.raises(UserError, match="mcq"):
        layout_for("vlmevalkit")(op, rec)
    with pytest.raises(UserError, match="unknown layout"):
        layout_for("sharegpt")


def test_tasks_pickle_for_workers(mixed, prompts):
    import pickle

    rec = make_record(mixed, "n02012849", "crane_9")
    for task in (InstructTask(mixed, 3, prompts), OpenQuestionTask(mixed, 3, prompts, cot=True),
                 MCQTask(mixed, 3, prompts, num_choices=6, distractors="hard")):
        clone = pickle.loads(pickle.dumps(task))
        assert clone.make(rec, 2) == task.make(rec, 2)
        assert clone.describe() == task.describe()
