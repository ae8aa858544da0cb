"""VLM runtime throughput: shared-prefix scoring vs naive, batched vs batch-1 generation, and the prefill
ceiling, side by side in one run::

    .venv/bin/python scripts/bench_vlm.py                        # CPU: preset cpu-small (~3 min on 2 cores)
    .venv/bin/python scripts/bench_vlm.py --markdown             # also print the table as Markdown
    .venv/bin/python scripts/bench_vlm.py --device cuda          # GPU: preset llava-1.5-7b, bf16

Everything goes through :class:`vlm_classdata.vlm.VLM` on a randomly initialised LLaVA (no download; ``HF_HUB_OFFLINE=1``):

* scoring: every image against all 1000 ImageNet class names (``ClassVocabulary.bundled("imagenet1k")``).
  naive = :meth:`VLM.score` ``mode="naive"`` (one full forward pass per class), timed on ``--naive-classes``
  classes spread over the list and extrapolated linearly to 1000 (marked ``*``); ours = ``mode="shared"``
  (prompt encoded once, its KV cache reused for all 1000). On the timed subset both must agree (max abs diff
  of the summed and mean log-probabilities <= 1e-3 in fp32, else the exit status is 1).
* generation: ``--gen-images`` images with questions of varied length, greedy, ``--max-new-tokens``: a batch-1
  loop of :meth:`VLM.generate` vs one batched call. In fp32 the replies must be identical (else exit 1).
* ceiling: prefill only — image + prompt through the model once, no candidate and no decoding (scoring: one
  one-token candidate, which needs no forward pass of its own; generation: ``max_new_tokens=1``). Its
  estimated FLOPs (2 x matmul parameters x tokens + attention) give the achieved GFLOP/s and, on a known
  GPU, the fraction of the dense bf16 matrix-unit peak.

Presets: ``tiny`` (make_tiny_llava defaults, for the smoke test), ``cpu-small`` (LLaVA-1.5 architecture with
576 image tokens but small widths; saved with make_tiny_llava and loaded with VLM.load) and ``llava-1.5-7b``
(LLaVA-1.5-7B's configuration, 7.06 B parameters, built directly on the device and wrapped in ``VLM`` without
saving 14 GB; only the processor goes through a folder). A warm-up of every path runs before timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported anywhere
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import numpy as np  # noqa: E402
from bench_builders import machine_info  # noqa: E402  (cpu, cores, ram, os, python lines)
from PIL import Image  # noqa: E402

from vlm_classdata.errors import UserError, run_cli  # noqa: E402  (after the offline settings above)
from vlm_classdata.vlm import VLM, GenerationConfig  # noqa: E402
from vlm_classdata.vlm.loading import resolve_device_dtype  # noqa: E402
from vlm_classdata.vlm.tiny import build_processor, build_tokenizer, llava_config, make_tiny_llava  # noqa: E402
from vlm_classdata.vocabulary import ClassVocabulary  # noqa: E402

SCORE_GOAL = 20.0  # shared-prefix scoring vs naive
GEN_GOAL = 3.0  # batched generation vs batch-1 loop
AGREE_LIMIT = 1e-3  # max abs diff of shared vs naive log-probabilities in fp32
SEED = 0
SCORE_QUESTION = "What is the main object in this image? Answer with its class name."
GEN_QUESTIONS = [
    "What is it?",
    "Describe the image.",
    "Which animal is shown here?",
    "Is there a dog in the picture? Answer yes or no.",
    "What color is the largest object in this photo, and where is it?",
    "Describe the scene in one sentence, naming the main object and what surrounds it.",
    "Which of the ImageNet classes best describes the object in the centre of this image? Give only the name.",
    "Look carefully at the picture and tell me, in a few words, what the main object is, what it is made of and "
    "whether it is indoors or outdoors.",
]

# dense bf16 matrix-unit peak (TFLOP/s) by a substring of torch.cuda.get_device_name(); first match wins
PEAK_BF16_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),
                    ("A100", 312.0), ("L40S", 362.0)]

# make_tiny_llava / llava_config arguments; "in_memory": build on the device instead of save + VLM.load
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"args": {}, "in_memory": False,
             "defaults": {"images": 2, "naive_classes": 10, "gen_images": 6, "max_new_tokens": 4,
                          "batch_size": 3, "score_batch_size": 32}},
    "cpu-small": {
        "args": {"text_hidden": 512, "text_layers": 4, "image_size": 336, "patch_size": 14,
                 "text_intermediate": 1376, "text_heads": 8, "vision_hidden": 256, "vision_intermediate": 1024,
                 "vision_layers": 4, "vision_heads": 4, "vision_feature_layer": -2, "projection_dim": 256},
        "in_memory": False,
        "defaults": {"images": 4, "naive_classes": 50, "gen_images": 32, "max_new_tokens": 16,
                     "batch_size": 8, "score_batch_size": 32}},
    "llava-1.5-7b": {
        "args": {"text_hidden": 4096, "text_layers": 32, "image_size": 336, "patch_size": 14,
                 "text_intermediate": 11008, "text_heads": 32, "vocab_size": 32000, "vision_hidden": 1024,
                 "vision_intermediate": 4096, "vision_layers": 24, "vision_heads": 16,
                 "vision_feature_layer": -2, "projection_dim": 768, "initializer_range": 0.02,
                 "max_positions": 4096},
        "in_memory": True,
        "defaults": {"images": 8, "naive_classes": 50, "gen_images": 64, "max_new_tokens": 16,
                     "batch_size": 16, "score_batch_size": 64}},
}

SCORE_NAIVE = "score naive: 1 forward per class"
SCORE_SHARED = "score shared prefix (ours)"
SCORE_CEILING = "ceiling: prefill only, batch 1"
GEN_LOOP = "generate batch-1 loop"
GEN_BATCHED = "generate batched (ours)"
GEN_PREFILL_LOOP = "prefill only (1 new token), batch-1 loop"
GEN_CEILING = "ceiling: prefill only (1 new token), batched"
ROWS = [SCORE_NAIVE, SCORE_SHARED, SCORE_CEILING, GEN_LOOP, GEN_BATCHED, GEN_PREFILL_LOOP, GEN_CEILING]
HEADERS = ["contender", "images", "work per image", "seconds", "images/s", "speed-up", "% of ceiling",
           "GFLOP/s", "% of peak"]


# ----- model ------------------------------------------------------------------------------------------
def describe_config(config: Any) -> str:
    """One line: the vision tower, projector and text model sizes of a ``LlavaConfig``."""
    v, t = config.vision_config, config.text_config
    n_img = (v.image_size // v.patch_size) ** 2
    return (f"CLIP ViT {v.image_size}/{v.patch_size} ({n_img} image tokens): hidden {v.hidden_size}, "
            f"{v.num_hidden_layers} layers, {v.num_attention_heads} heads, intermediate {v.intermediate_size}, "
            f"feature layer {config.vision_feature_layer} → {config.projector_hidden_act} projector → Llama: "
            f"hidden {t.hidden_size}, {t.num_hidden_layers} layers, {t.num_attention_heads} heads, "
            f"intermediate {t.intermediate_size}, vocab {t.vocab_size}")


def build_vlm(preset: str, device: str | None, dtype: str | None, work: Path, in_memory: bool | None = None):
    """The preset's random LLaVA as a :class:`VLM` and a line saying how it was built.

    Saved with ``make_tiny_llava`` and loaded with ``VLM.load``; or (``in_memory``, the default for
    ``llava-1.5-7b``) constructed directly on the device in its dtype and wrapped in ``VLM(...)``, with only the
    processor saved to and loaded from a folder.
    """
    import torch  # heavy: only the timed runs need it

    spec = PRESETS[preset]
    args = dict(spec["args"])
    in_memory = spec["in_memory"] if in_memory is None else in_memory
    if not in_memory:
        path = make_tiny_llava(str(work / preset), seed=SEED, **args)
        return VLM.load(path, device=device, dtype=dtype), f"saved with make_tiny_llava, loaded with VLM.load ({path})"
    from transformers import AutoModelForImageTextToText, AutoProcessor  # heavy: the in-memory path only

    device, torch_dtype = resolve_device_dtype(device, dtype)
    tokenizer = build_tokenizer()
    build_processor(args.get("image_size", 32), args.get("patch_size", 8), tokenizer).save_pretrained(
        work / "processor")
    processor = AutoProcessor.from_pretrained(str(work / "processor"))
    config = llava_config(processor.tokenizer, **args)
    torch.manual_seed(SEED)
    with torch.device(device):  # parameters are created (and randomly initialised) on the device, in dtype
        model = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    vlm = VLM(model, processor, name=f"random {preset} (in memory)", device=device)
    return vlm, (f"built in memory on {device} in {str(torch_dtype).removeprefix('torch.')} (not saved), "
                 f"wrapped in VLM(model, processor, ...); processor loaded from {work / 'processor'}")


def matmul_params(module: Any) -> int:
    """Weights of the ``nn.Linear`` layers under ``module`` (each used once per token)."""
    import torch  # heavy: only the timed runs need it

    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def prefill_flops(model: Any, text_tokens: int) -> float | None:
    """Estimated FLOPs of one prefill forward pass of a LLaVA over ``text_tokens`` (image tokens included).

    2 x weights x tokens for every matmul (vision tower on patches + CLS, patch convolution and projector on the
    patches, text layers on every token, the LM head on the last token only) plus attention: 4·L·S²·d in the
    bidirectional vision tower and 2·L·T²·d in the causal text model. None when the model is not a LLaVA.
    """
    import torch  # heavy: only the timed runs need it

    inner = getattr(model, "model", None)
    if not all(hasattr(inner, a) for a in ("vision_tower", "multi_modal_projector", "language_model")):
        return None
    v, t = model.config.vision_config, model.config.text_config
    patches = (v.image_size // v.patch_size) ** 2
    conv = sum(m.weight.numel() for m in inner.vision_tower.modules() if isinstance(m, torch.nn.Conv2d))
    flops = 2.0 * matmul_params(inner.vision_tower) * (patches + 1) + 2.0 * conv * patches
    flops += 2.0 * matmul_params(inner.multi_modal_projector) * patches
    flops += 2.0 * matmul_params(inner.language_model) * text_tokens + 2.0 * model.lm_head.weight.numel()
    flops += 4.0 * v.num_hidden_layers * (patches + 1) ** 2 * v.hidden_size
    flops += 2.0 * t.num_hidden_layers * text_tokens ** 2 * t.hidden_size
    return flops


def peak_tflops(device: str, dtype: Any) -> tuple[float | None, str]:
    """Dense bf16/fp16 peak of the GPU and its name; (None, reason) on CPU, in fp32 or on an unknown GPU."""
    import torch  # heavy: only the timed runs need it

    if not device.startswith("cuda"):
        return None, "CPU"
    name = torch.cuda.get_device_name(torch.device(device))
    if dtype not in (torch.bfloat16, torch.float16):
        return None, f"{name} ({str(dtype).removeprefix('torch.')}: no bf16 peak applies)"
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None), name


# ----- inputs -----------------------------------------------------------------------------------------
def make_images(n: int, seed: int) -> list[Any]:
    """``n`` random RGB images of varied sizes (160-640 px per side), seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = (int(x) for x in rng.integers(160, 641, size=2))
        out.append(Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB"))
    return out


def one_token_answer(vlm: Any, prompt: str) -> str:
    """A word that is a single token as the answer after ``prompt`` (scoring it needs no forward of its own)."""
    tok = vlm.tokenizer
    for word in ("a", "A", "the", "yes", "no", "cat", "dog"):
        if len(vlm.candidate_ids(prompt, [word])[0]) == 1:
            return word
    for i in range(min(len(tok), 5000)):
        word = tok.decode([i]).strip()
        if word and i not in tok.all_special_ids and len(vlm.candidate_ids(prompt, [word])[0]) == 1:
            return word
    raise RuntimeError("no one-token answer found in the tokenizer")


def prompt_tokens(vlm: Any, image: Any, question: str) -> int:
    """Prompt length in tokens, image tokens included, as the processor encodes it."""
    enc = vlm.processor(text=[vlm.build_prompt(question, True)], images=[image.convert("RGB")],
                        return_tensors="pt")
    return int(enc["input_ids"].shape[1])


# ----- timing -----------------------------------------------------------------------------------------
def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs' time spent non-idle over the next ``seconds`` (/proc/stat); None if unreadable.
    Run while this process is idle, it measures what other processes take from the benchmark."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            vals = [int(x) for x in fh.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals[:8])  # idle + iowait, total (guest time is inside user)

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def make_timer(device: str) -> Callable[[Callable[[], Any]], tuple[Any, float]]:
    """``timer(fn) -> (fn(), seconds)`` under ``torch.inference_mode()``, synchronising CUDA around it."""
    import torch  # heavy: only the timed runs need it

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def timer(fn: Callable[[], Any]) -> tuple[Any, float]:
        with torch.inference_mode():
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            return out, time.perf_counter() - t0

    return timer


@dataclass
class Row:
    """One contender's measurement."""
    name: str
    images: int
    work: str
    seconds: float
    extrapolated: bool = False
    baseline: str | None = None  # row the speed-up is relative to
    ceiling: str | None = None  # row whose images/s is 100 %
    flops: float | None = None  # estimated useful FLOPs of the whole run
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def bench_scoring(vlm: Any, images: list[Any], classes: list[str], naive_classes: int, batch_size: int,
                  timer: Callable, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    """Naive (subset, extrapolated) vs shared (all classes) vs prefill only; and their agreement."""
    step = max(1, len(classes) // naive_classes)
    subset_idx = list(range(0, len(classes), step))[:naive_classes]
    subset = [classes[i] for i in subset_idx]
    prompt = vlm.build_prompt(SCORE_QUESTION, True)
    one = one_token_answer(vlm, prompt)
    lengths = [len(ids) for ids in vlm.candidate_ids(prompt, classes)]
    n_prompt = prompt_tokens(vlm, images[0], SCORE_QUESTION)
    log(f"scoring: {len(images)} image(s) x {len(classes)} class names, question {SCORE_QUESTION!r}: prompt "
        f"{n_prompt} tokens, class names {min(lengths)}-{max(lengths)} tokens (mean "
        f"{sum(lengths) / len(lengths):.1f}); shared batch size {batch_size}; naive on {len(subset)} classes "
        f"(every {step}th)")
    t0 = time.perf_counter()
    timer(lambda: vlm.score(images[0], SCORE_QUESTION, classes[: 2 * batch_size], "shared", batch_size))
    timer(lambda: vlm.score(images[0], SCORE_QUESTION, subset[:2], "naive"))
    timer(lambda: vlm.score(images[0], SCORE_QUESTION, [one], "shared"))
    log(f"  warm-up: {time.perf_counter() - t0:.1f} s")

    cpu0 = os.times()
    shared, t_shared = timer(lambda: [vlm.score(im, SCORE_QUESTION, classes, "shared", batch_size)
                                      for im in images])
    cpu1 = os.times()
    log(f"  {SCORE_SHARED}: {t_shared:.2f} s")
    naive, t_naive = timer(lambda: [vlm.score(im, SCORE_QUESTION, subset, "naive") for im in images])
    log(f"  {SCORE_NAIVE}: {t_naive:.2f} s for {len(subset)} classes")
    _, t_prefill = timer(lambda: [vlm.score(im, SCORE_QUESTION, [one], "shared") for im in images])
    log(f"  {SCORE_CEILING}: {t_prefill:.2f} s (one-token answer {one!r})")

    d_sum = d_mean = 0.0
    for img_shared, img_naive in zip(shared, naive, strict=True):
        for i, (n_sum, n_mean) in zip(subset_idx, img_naive, strict=True):
            d_sum = max(d_sum, abs(img_shared[i][0] - n_sum))
            d_mean = max(d_mean, abs(img_shared[i][1] - n_mean))
    flops = prefill_flops(vlm.model, n_prompt)
    n = len(images)
    rows = [
        Row(SCORE_NAIVE, n, f"{len(classes)} classes ({len(subset)} timed)", t_naive * len(classes) / len(subset),
            extrapolated=True, baseline=SCORE_NAIVE, ceiling=SCORE_CEILING),
        Row(SCORE_SHARED, n, f"{len(classes)} classes", t_shared, baseline=SCORE_NAIVE, ceiling=SCORE_CEILING),
        Row(SCORE_CEILING, n, f"1 forward, {n_prompt} tokens", t_prefill, baseline=SCORE_NAIVE,
            ceiling=SCORE_CEILING, flops=None if flops is None else flops * n),
    ]
    info = {"d_sum": d_sum, "d_mean": d_mean, "pairs": n * len(subset), "subset": len(subset), "step": step,
            "candidate_seconds": t_shared - t_prefill, "shared_user": cpu1.user - cpu0.user,
            "shared_system": cpu1.system - cpu0.system}
    return rows, info


def bench_generation(vlm: Any, images: list[Any], max_new_tokens: int, batch_size: int, timer: Callable,
                     log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    """A batch-1 loop vs batched :meth:`VLM.generate`, and both again with one new token (prefill only)."""
    items = [(im, GEN_QUESTIONS[i % len(GEN_QUESTIONS)]) for i, im in enumerate(images)]
    n_tokens = [prompt_tokens(vlm, im, q) for im, q in items]
    log(f"generation: {len(items)} image(s), {len(GEN_QUESTIONS)} questions of "
        f"{min(len(q) for q in GEN_QUESTIONS)}-{max(len(q) for q in GEN_QUESTIONS)} characters (prompts "
        f"{min(n_tokens)}-{max(n_tokens)} tokens), greedy, max_new_tokens {max_new_tokens}, batch size "
        f"{batch_size}")

    def loop(new: int) -> list[str]:
        return [vlm.generate([it], GenerationConfig(max_new_tokens=new, batch_size=1))[0] for it in items]

    def batched(new: int) -> list[str]:
        return vlm.generate(items, GenerationConfig(max_new_tokens=new, batch_size=batch_size))

    t0 = time.perf_counter()
    for it in items[:2]:
        timer(lambda it=it: vlm.generate([it], GenerationConfig(max_new_tokens=max_new_tokens, batch_size=1)))
    timer(lambda: vlm.generate(items[:batch_size], GenerationConfig(max_new_tokens=max_new_tokens,
                                                                   batch_size=batch_size)))
    log(f"  warm-up: {time.perf_counter() - t0:.1f} s")
    single, t_loop = timer(lambda: loop(max_new_tokens))
    log(f"  {GEN_LOOP}: {t_loop:.2f} s")
    multi, t_batched = timer(lambda: batched(max_new_tokens))
    log(f"  {GEN_BATCHED}: {t_batched:.2f} s")
    _, t_pre_loop = timer(lambda: loop(1))
    log(f"  {GEN_PREFILL_LOOP}: {t_pre_loop:.2f} s")
    _, t_pre_batched = timer(lambda: batched(1))
    log(f"  {GEN_CEILING}: {t_pre_batched:.2f} s")

    per = [prefill_flops(vlm.model, t) for t in n_tokens]
    flops = None if any(f is None for f in per) else sum(per)
    n = len(items)
    work = f"≤{max_new_tokens} new tokens"
    rows = [
        Row(GEN_LOOP, n, work, t_loop, baseline=GEN_LOOP, ceiling=GEN_CEILING),
        Row(GEN_BATCHED, n, f"{work}, bs {batch_size}", t_batched, baseline=GEN_LOOP, ceiling=GEN_CEILING),
        Row(GEN_PREFILL_LOOP, n, "1 forward", t_pre_loop, baseline=GEN_LOOP, ceiling=GEN_CEILING, flops=flops),
        Row(GEN_CEILING, n, f"1 forward, bs {batch_size}", t_pre_batched, baseline=GEN_LOOP,
            ceiling=GEN_CEILING, flops=flops),
    ]
    mismatches = sum(a != b for a, b in zip(single, multi, strict=True))
    empty = sum(not r for r in single)
    return rows, {"mismatches": mismatches, "empty": empty, "n": n}


# ----- table ------------------------------------------------------------------------------------------
def table_rows(rows: list[Row], peak: float | None) -> list[list[str]]:
    """Formatted cells; extrapolated numbers carry ``*``."""
    by_name = {r.name: r for r in rows}
    out = []
    for r in rows:
        star = "*" if r.extrapolated else ""
        base, ceil = by_name.get(r.baseline or ""), by_name.get(r.ceiling or "")
        speed = f"{r.rate / base.rate:,.1f}×{star}" if base and base.rate else "-"
        pct = f"{100 * r.rate / ceil.rate:.1f}%{star}" if ceil and ceil.rate else "-"
        gflops = f"{r.flops / r.seconds / 1e9:,.1f}" if r.flops else "-"
        of_peak = "-"
        if r.flops:
            of_peak = f"{100 * r.flops / r.seconds / (peak * 1e12):.1f}%" if peak else "n/a"
        rate = r.rate
        rate_s = f"{rate:,.3f}" if rate < 10 else f"{rate:,.1f}"
        out.append([r.name, f"{r.images:,}", r.work, f"{r.seconds:,.2f}{star}", f"{rate_s}{star}", speed, pct,
                    gflops, of_peak])
    return out


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """An aligned plain-text table (first column left, the others right-aligned), or the same in Markdown."""
    if markdown:
        head = "| " + " | ".join(headers) + " |"
        align = "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"
        return "\n".join([head, align, *("| " + " | ".join(r) + " |" for r in rows)])
    widths = [max(len(c) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


# ----- main -------------------------------------------------------------------------------------------
def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (count defaults depend on the preset: see ``PRESETS``)."""
    p = argparse.ArgumentParser(prog="python scripts/bench_vlm.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="model (default: cpu-small on CPU, llava-1.5-7b on CUDA)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available, else cpu)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16")
    p.add_argument("--images", type=int, help="images for scoring (default: 4 on cpu-small, 8 on llava-1.5-7b)")
    p.add_argument("--naive-classes", type=int,
                   help="classes the naive scorer is timed on, extrapolated to 1000 (default 50)")
    p.add_argument("--gen-images", type=int, help="images for generation (default: 32, 64 on llava-1.5-7b)")
    p.add_argument("--max-new-tokens", type=int, help="new tokens per reply, greedy (default 16)")
    p.add_argument("--batch-size", type=int, help="generation batch size (default: 8, 16 on llava-1.5-7b)")
    p.add_argument("--score-batch-size", type=int,
                   help="candidates per batch in shared scoring (default: 32, 64 on llava-1.5-7b)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the cores this process may use)")
    p.add_argument("--in-memory", action="store_true",
                   help="build the model in memory on the device instead of save + VLM.load (always for "
                        "llava-1.5-7b)")
    p.add_argument("--work", help="folder for the saved model (default: a temporary folder)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table. 0, or 1 when shared and naive scores or batched and batch-1
    replies disagree in fp32."""
    args = build_parser().parse_args(argv)
    import torch  # heavy: only the timed runs need it

    device, torch_dtype = resolve_device_dtype(args.device, args.dtype)
    preset = args.preset or ("llava-1.5-7b" if device.startswith("cuda") else "cpu-small")
    for key, value in PRESETS[preset]["defaults"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    counts = ("images", "naive_classes", "gen_images", "max_new_tokens", "batch_size", "score_batch_size")
    if any(getattr(args, k) < 1 for k in counts) or (args.threads is not None and args.threads < 1):
        raise UserError("--images, --naive-classes, --gen-images, --max-new-tokens, --batch-size, "
                        "--score-batch-size and --threads must be at least 1")
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    classes = ClassVocabulary.bundled("imagenet1k").names
    args.naive_classes = min(args.naive_classes, len(classes))

    def log(msg: str) -> None:
        print(msg, flush=True)

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_vlm_"))
    work.mkdir(parents=True, exist_ok=True)
    dtype_name = str(torch_dtype).removeprefix("torch.")
    log("machine:")
    for line in machine_info(work):
        if not line.startswith("disk:"):  # the disk plays no part here
            log(f"  {line}")
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "none used"
    log(f"  torch:    {torch.__version__}, transformers {_version('transformers')}; device {device}, dtype "
        f"{dtype_name}, {torch.get_num_threads()} CPU thread(s); GPU: {gpu}")
    busy = cpu_busy()
    if busy is not None:
        log(f"  load:     CPUs {100 * busy:.0f}% busy with other processes just before the run")
        if not device.startswith("cuda") and busy > 0.2:
            log(f"  warning: other processes compete for the cores; with {threads} torch thread(s) the times "
                f"can be several times too slow")

    t0 = time.perf_counter()
    vlm, how = build_vlm(preset, device, args.dtype, work, in_memory=True if args.in_memory else None)
    n_params = sum(p.numel() for p in vlm.model.parameters())
    log(f"model: preset {preset}: random LLaVA ({type(vlm.model).__name__}), {n_params / 1e6:,.1f} M parameters, "
        f"{dtype_name}; {how}; {time.perf_counter() - t0:.1f} s")
    log(f"  {describe_config(vlm.model.config)}")
    timer = make_timer(device)
    score_rows, agree = bench_scoring(vlm, make_images(args.images, SEED), classes, args.naive_classes,
                                      args.score_batch_size, timer, log)
    gen_rows, gen = bench_generation(vlm, make_images(args.gen_images, SEED + 1), args.max_new_tokens,
                                     args.batch_size, timer, log)
    rows = score_rows + gen_rows
    peak, peak_name = peak_tflops(device, torch_dtype)
    cells = table_rows(rows, peak)

    fp32 = torch_dtype == torch.float32
    agree_ok = agree["d_sum"] <= AGREE_LIMIT and agree["d_mean"] <= AGREE_LIMIT
    gen_ok = gen["mismatches"] == 0
    by = {r.name: r for r in rows}
    naive, shared = by[SCORE_NAIVE], by[SCORE_SHARED]
    loop, batched, pre_loop, pre_batched = by[GEN_LOOP], by[GEN_BATCHED], by[GEN_PREFILL_LOOP], by[GEN_CEILING]
    score_speed, gen_speed = shared.rate / naive.rate, batched.rate / loop.rate
    print()
    print(format_table(HEADERS, cells))
    print(f"* naive timed on {agree['subset']} of {len(classes)} classes (every {agree['step']}th) per image; "
          f"seconds and images/s extrapolated linearly to {len(classes)}")
    verdict = ("ok" if agree_ok else "FAILED") if fp32 else "not checked in " + dtype_name
    print(f"agreement, shared vs naive on {agree['pairs']} (image, class) pairs: max |Δ sum log p| = "
          f"{agree['d_sum']:.1e}, max |Δ mean log p| = {agree['d_mean']:.1e} → {verdict} (limit {AGREE_LIMIT:g} "
          f"in fp32)")
    verdict = ("ok" if gen_ok else "FAILED") if fp32 else "identity not required in " + dtype_name
    print(f"generation: {gen['mismatches']} of {gen['n']} replies differ between batched and batch-1 → {verdict} "
          f"({gen['empty']} empty replies)")
    per_img = {r.name: r.seconds / r.images for r in rows}
    print(f"shared scoring per image: {per_img[SCORE_SHARED]:.3f} s = prefill {per_img[SCORE_CEILING]:.3f} s + "
          f"{len(classes)} candidates {agree['candidate_seconds'] / shared.images:.3f} s; naive per class "
          f"{per_img[SCORE_NAIVE] / len(classes):.4f} s; process CPU time in shared scoring: user "
          f"{agree['shared_user']:.1f} s, system {agree['shared_system']:.1f} s (system: mostly page faults of "
          f"freshly allocated memory)")
    print(f"% of ceiling: images/s relative to the prefill-only row of the same group; GFLOP/s: estimated useful "
          f"prefill FLOPs (2 × matmul weights × tokens + attention, padding excluded) per second; % of peak: of "
          f"{peak_name}'s dense bf16 peak" + (f" ({peak:g} TFLOP/s)" if peak else ": n/a"))
    print(f"goals: shared ≥ {SCORE_GOAL:g}× naive → {score_speed:,.1f}× "
          f"({'met' if score_speed >= SCORE_GOAL else 'NOT met'}); batched generation ≥ {GEN_GOAL:g}× batch-1 → "
          f"{gen_speed:.2f}× ({'met' if gen_speed >= GEN_GOAL else 'NOT met'})")
    prefill_share = per_img[GEN_PREFILL_LOOP] / per_img[GEN_LOOP]
    print(f"generation breakdown: batch-1 {per_img[GEN_LOOP]:.3f} s/image, of which prefill "
          f"{per_img[GEN_PREFILL_LOOP]:.3f} s ({100 * prefill_share:.0f}%); batching speeds prefill up "
          f"{pre_loop.seconds / pre_batched.seconds:.2f}× and decoding (the rest) "
          f"{max(loop.seconds - pre_loop.seconds, 1e-9) / max(batched.seconds - pre_batched.seconds, 1e-9):.2f}×;"
          f" bound with free decoding: batch-1 generate / batched prefill = "
          f"{loop.seconds / pre_batched.seconds:.2f}×")
    print(f"load avg at end: {os.getloadavg()[0]:.2f} (this run included; other processes skew the times)")
    if args.markdown:
        print()
        print(format_table(HEADERS, cells, markdown=True))
    return 1 if fp32 and not (agree_ok and gen_ok) else 0


if __name__ == "__main__":

    sys.exit(run_cli(main))
