"""VLM runtime on a tiny random LLaVA saved with save_pretrained and loaded back offline (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from vlm_classdata.errors import UserError
from vlm_classdata.vlm import VLM, GenerationConfig, run_with_halving
from vlm_classdata.vlm.tiny import build_tokenizer, make_tiny_llava

QUESTIONS = ["What is it?", "Describe the animal in this image in a few words, please.", "A",
             "Which of these is the right class name for the object?", "Is there a dog?"]
CANDIDATES = [
    "tench", "goldfish", "great white shark", "tiger shark", "hammerhead", "electric ray", "stingray", "cock",
    "hen", "ostrich", "brambling", "goldfinch", "house finch", "junco", "indigo bunting", "American robin",
    "bulbul", "jay", "magpie", "chickadee", "water ouzel", "kite", "bald eagle", "vulture",
    "great grey owl, Strix nebulosa", "European fire salamander", "a",
]


def _image(seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    size = (32 + 8 * seed, 40)  # different sizes: the processor resizes and crops to 32x32
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def _flat(scores: list[tuple[float, float]]) -> list[float]:
    return [x for pair in scores for x in pair]


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory) -> str:
    return make_tiny_llava(str(tmp_path_factory.mktemp("tiny_llava")), seed=0)


@pytest.fixture(scope="session")
def vlm(tiny_path) -> VLM:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return VLM.load(tiny_path)


def test_load_offline_and_prompts(vlm, tiny_path):
    from transformers import LlavaForConditionalGeneration

    assert vlm.name == tiny_path and vlm.device == "cpu" and vlm.dtype == torch.float32
    assert isinstance(vlm.model, LlavaForConditionalGeneration) and not vlm.model.training
    assert vlm.model.config.image_token_index == vlm.tokenizer.convert_tokens_to_ids("<image>")
    assert vlm.build_prompt("What is it?", with_image=True) == "USER: <image>\nWhat is it? ASSISTANT:"
    assert vlm.build_prompt("What is it?", with_image=False) == "USER: What is it? ASSISTANT:"


def test_tiny_model_is_deterministic(tmp_path, tiny_path):
    again = make_tiny_llava(str(tmp_path / "again"), seed=0)
    other = make_tiny_llava(str(tmp_path / "other"), seed=1)
    weights = {p: Path(p, "model.safetensors").read_bytes() for p in (tiny_path, again, other)}
    assert weights[again] == weights[tiny_path]
    assert weights[other] != weights[tiny_path]


def test_batched_generation_equals_one_by_one(vlm):
    items = [(_image(i), q) for i, q in enumerate(QUESTIONS)]
    cfg = GenerationConfig(max_new_tokens=10, batch_size=3)
    batched = vlm.generate(items, cfg)
    single = [vlm.generate([item], GenerationConfig(max_new_tokens=10, batch_size=1))[0] for item in items]
    assert batched == single
    assert all(isinstance(r, str) for r in batched) and len(set(batched)) > 1  # order is really checked


def test_text_only_and_mixed_generation(vlm):
    items = [(None, q) for q in QUESTIONS[:3]] + [(_image(1), QUESTIONS[0]), (None, QUESTIONS[3])]
    cfg = GenerationConfig(max_new_tokens=8, batch_size=4)
    mixed = vlm.generate(items, cfg)
    single = [vlm.generate([item], cfg)[0] for item in items]
    assert mixed == single and len(mixed) == len(items)
    # the blind prompt really differs from the image prompt for the same question
    assert vlm.generate([(None, QUESTIONS[0])], cfg) != vlm.generate([(_image(1), QUESTIONS[0])], cfg)
    assert vlm.generate([], cfg) == []


@pytest.mark.parametrize("with_image", [True, False])
def test_score_shared_equals_naive(vlm, with_image):
    image = _image(3) if with_image else None
    prompt = vlm.build_prompt(QUESTIONS[1], with_image)
    lengths = [len(ids) for ids in vlm.candidate_ids(prompt, CANDIDATES)]
    assert len(CANDIDATES) >= 20 and len(set(lengths)) >= 4
    shared = vlm.score(image, QUESTIONS[1], CANDIDATES, mode="shared", batch_size=8)
    naive = vlm.score(image, QUESTIONS[1], CANDIDATES, mode="naive")
    assert len(shared) == len(naive) == len(CANDIDATES)
    for (s_sum, s_mean), (n_sum, n_mean), n_tok in zip(shared, naive, lengths, strict=True):
        assert s_sum == pytest.approx(n_sum, abs=1e-4) and s_mean == pytest.approx(n_mean, abs=1e-4)
        assert s_sum < 0 and s_mean == pytest.approx(s_sum / n_tok, rel=1e-6)
    # the image is really part of the scored context (candidates packed differently agree to float precision)
    other = vlm.score(_image(4) if with_image else None, QUESTIONS[1], CANDIDATES[:3])
    assert (_flat(other) == pytest.approx(_flat(shared[:3]), abs=1e-5)) != with_image


def test_scores_are_normalised_log_probs(vlm):
    """Scores are log-probabilities (log-softmax), not raw logits."""
    tok = vlm.tokenizer
    prompt = vlm.build_prompt("What is it?", True)
    vocab = [tok.convert_tokens_to_ids(t) for t in tok.get_vocab()]
    singles = [i for i in vocab if i not in tok.all_special_ids]
    words = [tok.decode([i]) for i in singles]
    ids = vlm.candidate_ids(prompt, [w.removeprefix(" ") for w in words])
    keep = [w for w, cand in zip(words, ids, strict=True) if len(cand) == 1]
    scores = vlm.score(_image(0), "What is it?", [w.removeprefix(" ") for w in keep], batch_size=256)
    total = sum(torch.tensor(s).exp().item() for s, _ in scores)
    # distinct one-token answers are disjoint events: their probabilities are positive and add up to <= 1
    assert len(keep) > 100 and len(set(keep)) == len(keep) and 0.1 < total <= 1.0 + 1e-4


def test_oom_halves_the_batch(vlm, monkeypatch, caplog):
    items = [(_image(i), q) for i, q in enumerate(QUESTIONS)] + [(None, "Is it a fish?"), (None, "Hi")]
    cfg = GenerationConfig(max_new_tokens=6, batch_size=8)
    want_gen = vlm.generate(items, cfg)
    want_score = vlm.score(_image(2), "What is it?", CANDIDATES, batch_size=16)
    seen: list[int] = []
    real_forward = vlm.model.forward
    # a packed row of one candidate always fits; 16 candidates do not
    longest = max(len(c) for c in vlm.candidate_ids(vlm.build_prompt("What is it?", True), CANDIDATES))

    @functools.wraps(real_forward)  # keeps the signature generate() inspects
    def forward_with_small_memory(*args, **kwargs):
        ref = kwargs.get("input_ids")
        ref = ref if ref is not None else kwargs["inputs_embeds"]
        # generation: rows in the batch; packed candidate scoring (one row, 4D mask): tokens in the row
        packed = kwargs.get("position_ids") is not None and getattr(kwargs.get("attention_mask"), "ndim", 2) == 4
        size = ref.shape[1] if packed else ref.shape[0]
        seen.append(size)
        if size > (longest if packed else 2):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(vlm.model, "forward", forward_with_small_memory)
    assert vlm.generate(items, cfg) == want_gen
    assert max(seen) > 2 and 2 in seen
    seen.clear()
    caplog.clear()
    got = vlm.score(_image(2), "What is it?", CANDIDATES, batch_size=16)
    assert _flat(got) == pytest.approx(_flat(want_score), abs=1e-5)
    assert seen[0] == 1 and max(seen) > longest  # the prompt once (batch 1), then a too-large packed row
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and retries[0].endswith("batch size 8")  # 16 candidates -> 8 -> ...


def test_run_with_halving_errors():
    calls: list[int] = []

    def always_oom(chunk):
        calls.append(len(chunk))
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_with_halving(list(range(5)), 4, always_oom)
    assert calls == [4, 2, 1]

    def other_error(chunk):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_halving([1, 2], 2, other_error)
    assert run_with_halving(list(range(7)), 3, lambda c: [x * 10 for x in c]) == [x * 10 for x in range(7)]


def test_family_class_fallback_text_only_model(tmp_path):
    """A causal LM that AutoModelForImageTextToText does not map loads through config.architectures."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, pad_token_id=0))
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    lm = VLM.load(str(tmp_path / "lm"))
    assert isinstance(lm.model, LlamaForCausalLM)
    shared = lm.score(None, "Name a fish.", CANDIDATES[:6], batch_size=4)
    naive = lm.score(None, "Name a fish.", CANDIDATES[:6], mode="naive")
    assert _flat(shared) == pytest.approx(_flat(naive), abs=1e-4)
    assert len(lm.generate([(None, "Hi"), (None, "Name a fish.")], GenerationConfig(max_new_tokens=4))) == 2


def test_user_errors(vlm, tmp_path):
    with pytest.raises(UserError, match="not found"):
        VLM.load(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="cannot load model"):
        VLM.load("no-such-org/no-such-model")  # offline and not cached: fails at once
    with pytest.raises(UserError, match="cannot load model"):
        VLM.load(str(tmp_path))  # a folder without a checkpoint
    with pytest.raises(UserError, match="dtype"):
        VLM.load(str(tmp_path), dtype="int3")
    with pytest.raises(UserError, match="mode"):
        vlm.score(None, "q", ["a"], mode="fast")
    assert vlm.score(None, "q", []) == []


def test_unpacked_scoring_equals_packed(vlm, monkeypatch):
    """Models outside PACKED_SCORING score one row per candidate on copies of the prompt cache: same numbers."""
    packed = vlm.score(_image(5), QUESTIONS[3], CANDIDATES, batch_size=8)
    monkeypatch.setattr(vlm, "_packed", False)
    rows = vlm.score(_image(5), QUESTIONS[3], CANDIDATES, batch_size=8)
    assert _flat(rows) == pytest.approx(_flat(packed), abs=1e-4)
    assert vlm.model.config.model_type == "llava"
