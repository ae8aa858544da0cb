"""Distractor validity on real WordNet 3.0: the rule (vlm_classdata.distractors), 26-way MCQ items for all 1000
ImageNet classes with no second correct option, per-item hard draws, relations and the build report."""

from __future__ import annotations

import json
import pickle
import random
import time
from collections import Counter

import pytest

from builders.formats.mcq import balanced_positions
from builders.formats.tasks import MCQTask
from builders.prompts import PromptRegistry
from builders.records import Record, sample_rng
from vlm_classdata.distractors import (
    INVALID_REASONS,
    RELATIONS,
    DistractorPolicy,
    distractor_policy,
    distractor_report,
)
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

PROJECTILE, MISSILE = "n04008634", "n03773504"
SPINY_LOBSTER, CRAYFISH = "n01984695", "n01985128"
LAPTOP, NOTEBOOK = "n03642806", "n03832673"
SUNGLASS, SUNGLASSES = "n04355933", "n04356056"
PAN_FLUTE, SYRINGE = "n03884397", "n04376876"
TENCH = "n01440764"
BAD_PAIRS = [(PROJECTILE, MISSILE), (SPINY_LOBSTER, CRAYFISH), (LAPTOP, NOTEBOOK)]
DOG, BEAGLE, BASSET, GOLDEN, TABBY = "n02084071", "n02088364", "n02088238", "n02099601", "n02123045"


@pytest.fixture(scope="module")
def inet() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k")


@pytest.fixture(scope="module")
def policy(inet) -> DistractorPolicy:
    return distractor_policy(inet)


@pytest.fixture(scope="module")
def prompts() -> PromptRegistry:
    return PromptRegistry.load()


def record(vocab: ClassVocabulary, class_id: str, key: str) -> Record:
    e = vocab[class_id]
    return Record(key=key, split="val", class_id=class_id, label=e.index, class_name=e.name,
                  image_bytes=b"\xff\xd8fake", image_ext="jpg", image_path=f"val/{key}.JPEG",
                  meta={"dataset": "imagenet1k", "index": 0})


def build_items(task: MCQTask, vocab: ClassVocabulary, class_ids: list[str], per_class: int) -> list[dict]:
    """MCQ items for ``per_class`` real records of every class, answer positions balanced as in a build."""
    recs = [record(vocab, cid, f"{cid}_{i}") for cid in class_ids for i in range(per_class)]
    positions = balanced_positions(len(recs), task.num_positions, task.seed, "val")
    rows = []
    for rec, pos in zip(recs, positions, strict=True):
        ex = task.make(rec, pos)
        rows.append({"class_id": rec.class_id, "option_class_ids": ex.option_class_ids, "options": ex.options,
                     "distractor_relations": ex.distractor_relations, "pool": ex.distractor_pool_size})
    return rows


def pairs_offered(rows: list[dict]) -> set[tuple[str, str]]:
    return {(r["class_id"], o) for r in rows for o in r["option_class_ids"] if o != r["class_id"]}


# ----- the rule -------------------------------------------------------------------------------------
def test_known_second_correct_options_are_invalid(policy):
    for a, b in BAD_PAIRS + [(SUNGLASS, SUNGLASSES)]:
        assert policy.invalid_reason(a, b) is not None and policy.invalid_reason(b, a) is not None, (a, b)
        assert b not in policy.sample_valid(a, policy.valid_count(a), random.Random(0))  # the whole pool
        assert a not in policy.sample_valid(b, policy.valid_count(b), random.Random(0))
    assert policy.explain(PROJECTILE, MISSILE) == "shared_form 'missile'"  # a lemma of projectile.n.01
    assert policy.explain(CRAYFISH, SPINY_LOBSTER) in ("shared_form 'crayfish'", "shared_form 'crawfish'")
    assert policy.invalid_reason(LAPTOP, NOTEBOOK) == "curated"  # WordNet links them by no lemma or hypernym
    assert policy.explain(SUNGLASS, SUNGLASSES) == "shared_form 'sunglasses'"  # a plural of one, a name of the other
    # "syringes" is only a plural in both (syrinx, syringe): no shared name, a valid distractor
    assert policy.invalid_reason(PAN_FLUTE, SYRINGE) is None
    assert policy.invalid_reason(TENCH, TENCH) == "answer"
    assert policy.valid_count(TENCH) == 999 and policy.valid_count(PROJECTILE) == 998
    pool = set(policy.sample_valid(PROJECTILE, 998, random.Random(0)))  # the whole pool sampling draws from
    assert len(pool) == 998 and PROJECTILE not in pool and MISSILE not in pool
    with pytest.raises(KeyError, match="not in vocabulary"):
        policy.invalid_reason("n00000000", TENCH)
    desc = policy.describe()
    assert desc["classes"] == 1000 and desc["excluded_pairs"]["curated"] == 10
    assert desc["excluded_pairs"]["shared_form"] > 20


def test_ancestors_descendants_synonyms_and_relations():
    vocab = ClassVocabulary.from_wnids([DOG, BEAGLE, BASSET, GOLDEN, TABBY, TENCH])
    p = DistractorPolicy(vocab)
    ids = {e.name: e.class_id for e in vocab}
    dog, beagle = ids[vocab[DOG].name], ids[vocab[BEAGLE].name]
    assert p.invalid_reason(beagle, dog) == "ancestor"  # "dog" is no wrong answer for a beagle photo
    assert p.invalid_reason(dog, beagle) == "descendant"
    assert p.invalid_reason(GOLDEN, DOG) == "ancestor" and p.invalid_reason(DOG, TABBY) is None
    assert sorted(p.sample_valid(DOG, 2, random.Random(0))) == sorted([TABBY, TENCH])
    with pytest.raises(ValueError):  # nothing else is valid for a dog photo
        p.sample_valid(DOG, 3, random.Random(0))
    assert p.relation(BEAGLE, BASSET) == "sibling"  # both hound.n.01
    assert p.relation(BEAGLE, GOLDEN) == "cousin"  # hunting_dog.n.01: 2 steps above beagle, 3 above golden
    assert p.relation(BEAGLE, TENCH) == "unrelated"
    assert p.relation(BEAGLE, DOG) == "ancestor" and p.relation(BEAGLE, BEAGLE) == "answer"
    # same synset through names (no wnids): "dog" and "domestic dog" are dog.n.01
    names = ClassVocabulary.from_names(["dog", "domestic dog", "tabby cat", "Zorblax 3000 gadget"])
    q = DistractorPolicy(names)
    assert q.invalid_reason("0", "1") == "same_synset"
    assert q.relation("0", "3") == "unknown" and q.invalid_reason("0", "3") is None
    # no WordNet synsets at all: only forms decide, relations unknown
    cars = ClassVocabulary.bundled("stanford_cars")
    c = distractor_policy(cars)
    assert c.describe()["classes_without_synset"] == len(cars)
    assert {c.relation(cars.ids[0], o) for o in cars.ids[1:20]} == {"unknown"}


def test_too_few_valid_distractors_is_one_user_error(prompts):
    vocab = ClassVocabulary.from_wnids([DOG, BEAGLE, BASSET, GOLDEN, TABBY, TENCH])
    MCQTask(vocab, 0, prompts, num_choices=3)  # dog keeps tabby and tench
    with pytest.raises(UserError, match=r"--mcq-choices 4: 1 class\(es\) have fewer than 3 valid distractors.*'dog'"):
        MCQTask(vocab, 0, prompts, num_choices=4)


# ----- 26-way items over all 1000 ImageNet classes ----------------------------------------------------
@pytest.mark.parametrize("mode", ["hard", "random"])
def test_26_way_all_imagenet_classes_offer_no_second_correct_option(inet, policy, prompts, mode):
    task = MCQTask(inet, 0, prompts, num_choices=26, distractors=mode)
    rows = build_items(task, inet, inet.ids, per_class=2)
    # the known pairs, many items each (old code: hard always offered them, random ~1 item in 40)
    rows += build_items(task, inet, [a for pair in BAD_PAIRS for a in pair], per_class=150)
    offered = pairs_offered(rows)
    for a, b in BAD_PAIRS:
        assert (a, b) not in offered and (b, a) not in offered
    invalid = [(a, o) for a, o in offered if policy.invalid_reason(a, o) is not None]
    assert invalid == []
    report = distractor_report(rows, policy)
    assert report["items"] == len(rows) and report["items_with_second_correct"] == 0
    assert report["unknown_options"] == report["answer_missing"] == 0 and report["examples"] == []
    assert set(report["relations"]) == set(RELATIONS) and sum(report["relations"].values()) == 25 * len(rows)
    # the recorded relations are the recomputed ones
    recorded = Counter(r for row in rows for r in row["distractor_relations"] if r != "answer")
    assert {k: recorded.get(k, 0) for k in RELATIONS} == report["relations"]
    assert all(row["distractor_relations"].count("answer") == 1 for row in rows)
    pools = {row["pool"] for row in rows}
    hist = report["relations"]
    near = (hist["sibling"] + hist["cousin"]) / sum(hist.values())
    print(mode, hist)  # measured (seed 0, 2 items per class): hard 3% sibling, 42% cousin; random 0.2%, 4%
    if mode == "hard":
        assert pools == {75}  # 3 * (26 - 1) nearest valid classes
        assert near > 0.3
    else:
        assert all(row["pool"] == policy.valid_count(row["class_id"]) for row in rows)  # all valid classes
        assert max(pools) == 999 and min(pools) == 996  # tusker loses both elephants and the wild boar
        assert near < 0.1 and hist["unknown"] == 0


def test_hard_items_of_one_class_get_different_distractor_sets(inet, prompts):
    task = MCQTask(inet, 3, prompts, num_choices=26, distractors="hard")
    for cid in (PROJECTILE, TENCH, "n02085620"):
        sets = {frozenset(row["option_class_ids"]) for row in build_items(task, inet, [cid], per_class=30)}
        assert len(sets) == 30
        pool = set(task.policy.hard_pool(cid, 75))
        assert set().union(*sets) - {cid} <= pool and len(set().union(*sets)) > 50


def test_seeded_draws_survive_pickling_and_random_mode_keeps_unaffected_draws(inet, prompts):
    task = MCQTask(inet, 5, prompts, num_choices=26, distractors="random")
    clone = pickle.loads(pickle.dumps(task))  # what a worker process gets
    assert len(pickle.dumps(task)) < 2_000_000
    for cid in (TENCH, PROJECTILE, LAPTOP):
        rec = record(inet, cid, f"k_{cid}")
        assert clone.make(rec, 7) == task.make(rec, 7) == MCQTask(inet, 5, prompts, 26, "random").make(rec, 7)
    # a class with no invalid partner draws exactly what the old "any other class" rule drew
    rec = record(inet, TENCH, "tench_1")
    rng = sample_rng(5, "mcq", "val", "tench_1")
    # (without --paraphrase-eval the templates are fixed and draw nothing from rng)
    old = rng.sample([c for c in inet.ids if c != TENCH], 25)
    rng.shuffle(old)
    old.insert(7, TENCH)
    assert task.make(rec, 7).option_class_ids == old


def test_policy_is_fast_cold_and_sampling_is_per_item(inet, policy, prompts):
    import vlm_classdata.distractors
    import vlm_classdata.hierarchy
    import vlm_classdata.lexicon.wordnet_senses

    # cold except WordNet's own load (measured apart: ~2.8 s on an idle 2-core machine)
    vlm_classdata.distractors._CACHE.clear()
    vlm_classdata.hierarchy._closures_cached.cache_clear()
    vlm_classdata.hierarchy._neighbors_cached.cache_clear()
    for name in ("noun_exceptions", "noun_senses", "sense_count", "is_noun", "in_wordnet", "noun_bases"):
        getattr(vlm_classdata.lexicon.wordnet_senses, name).cache_clear()
    start = time.perf_counter()
    distractor_policy(inet).hard_pool(TENCH, 75)
    build = time.perf_counter() - start
    print(f"policy for 1000 classes, cold: {build:.2f}s")
    assert build < 5, f"policy build took {build:.1f}s"
    # sampling cost does not grow with the vocabulary: 2000 items over 1000 classes, then again (pools warm)
    task = MCQTask(inet, 0, prompts, num_choices=26, distractors="random")
    rng = random.Random(0)
    recs = [record(inet, rng.choice(inet.ids), f"t{i}") for i in range(2000)]
    for r in recs:
        task.make(r, 0)
    start = time.perf_counter()
    for r in recs:
        task.make(r, 0)
    per_item = (time.perf_counter() - start) / len(recs)
    assert per_item < 0.002, f"{per_item * 1e6:.0f} µs per item"


def test_report_flags_second_correct_options_in_foreign_rows(policy, inet):
    rows = [
        {"class_id": PROJECTILE, "option_class_ids": [PROJECTILE, MISSILE, TENCH]},
        {"class_id": LAPTOP, "options": [inet[NOTEBOOK].name, inet[LAPTOP].name]},  # names only
        {"class_id": TENCH, "option_class_ids": [TENCH, TENCH, SYRINGE]},  # the answer twice
        {"class_id": TENCH, "option_class_ids": ["n99999999", SYRINGE]},  # answer missing, unknown option
    ]
    rep = distractor_report(rows, policy)
    assert rep["items"] == 4 and rep["items_with_second_correct"] == 3
    assert rep["relations"]["shared_form"] == 1 and rep["relations"]["curated"] == 1
    assert rep["unknown_options"] == 1 and rep["answer_missing"] == 1
    assert rep["examples"][0] == {"class_id": PROJECTILE, "option": MISSILE, "reason": "shared_form 'missile'"}
    assert set(INVALID_REASONS) >= {e["reason"].split()[0] for e in rep["examples"]}


def test_build_rows_record_distractors(tmp_path, inet, policy):
    """A real build (images on disk, mcq JSONL + mcq_hf parquet + VLMEvalKit TSV) over the 1000-class vocabulary."""
    from builders.pipeline import Build, BuildConfig
    from builders.sources.imagenet import ImageNetSource
    from builders.synthetic import make_imagenet_tree
    from vlm_classdata.executors import LocalExecutor

    wnids = (PROJECTILE, MISSILE, SPINY_LOBSTER, CRAYFISH, LAPTOP, NOTEBOOK)
    make_imagenet_tree(tmp_path / "inet", wnids, train_per_class=0, val_per_class=3)
    config = BuildConfig(outputs=["mcq", "mcq_hf", "vlmevalkit"], mcq_choices=26, distractors="hard",
                         splits=["val"], shard_size=5)
    m = Build(ImageNetSource(str(tmp_path / "inet"), vocabulary=inet), tmp_path / "out", config,
              LocalExecutor(1), show_progress=False).run()
    assert m["splits"]["validation"]["written"] == 18
    rows = [json.loads(x) for x in (tmp_path / "out" / "mcq" / "validation.jsonl").read_text().splitlines()]
    assert list(rows[0])[-4:] == ["option_class_ids", "distractor_mode", "distractor_pool_size",
                                  "distractor_relations"]
    assert all(r["distractor_mode"] == "hard" and r["distractor_pool_size"] == 75 for r in rows)
    assert all([inet[c].name for c in r["option_class_ids"]] == r["options"] for r in rows)
    rep = distractor_report(rows, policy)
    assert rep["items_with_second_correct"] == 0 and sum(rep["relations"].values()) == 18 * 25
    for a, b in BAD_PAIRS:
        assert (a, b) not in pairs_offered(rows) and (b, a) not in pairs_offered(rows)
    import datasets

    hf = datasets.load_dataset(str(tmp_path / "out" / "mcq_hf"))["validation"]
    assert hf.column_names == ["image", "id", "text", "question", "answer", "label", "class_id", "class_name",
                               "options", "answer_index", "index", "option_class_ids", "distractor_mode",
                               "distractor_pool_size", "distractor_relations"]
    by_id = {r["question_id"]: r for r in rows}
    for r in hf.remove_columns("image"):
        assert r["distractor_relations"] == by_id[r["id"]]["distractor_relations"]
        assert r["option_class_ids"] == by_id[r["id"]]["option_class_ids"]
    import pandas as pd

    tsv = pd.read_csv(tmp_path / "out" / "vlmevalkit" / "validation.tsv", sep="\t")
    assert list(tsv.columns) == ["index", "image", "question", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "answer", "category"]
    assert m["tasks"]["mcq"]["distractor_policy"]["excluded_pairs"]["curated"] == 10
    # two worker processes (the task and its policy pickled to them) write the same bytes
    Build(ImageNetSource(str(tmp_path / "inet"), vocabulary=inet), tmp_path / "out2", config,
          LocalExecutor(2), show_progress=False).run()
    for rel in ("mcq/validation.jsonl", "vlmevalkit/validation.tsv"):
        assert (tmp_path / "out2" / rel).read_bytes() == (tmp_path / "out" / rel).read_bytes()
