"""One vision-language model runtime: load, batched generation, candidate log-likelihood scoring.

Every verification pass, evaluator and benchmark builder goes through :class:`VLM`:

* :meth:`VLM.load` — ``AutoProcessor`` + ``AutoModelForImageTextToText`` (or the family class named in the
  config), bf16 on CUDA and fp32 on CPU (:mod:`vlm_classdata.vlm.loading`).
* :meth:`VLM.generate` — length-sorted, left-padded batches, greedy by default; the batch is halved and the
  failed chunk retried on out-of-memory.
* :meth:`VLM.score` — sum and mean log-likelihood of each candidate answer given image + question; the prompt is
  encoded once and its KV cache reused for all candidates (``mode="shared"``), or one full forward pass per
  candidate (``mode="naive"``, the reference).
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from vlm_classdata.errors import UserError, first_line
from vlm_classdata.vlm.batching import is_out_of_memory, run_with_halving
from vlm_classdata.vlm.loading import load_checkpoint

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class GenerationConfig:
    """Decoding settings for :meth:`VLM.generate` (greedy unless ``do_sample``)."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    batch_size: int = 8


PACKED_SCORING = frozenset({"llava", "llava_next", "llama", "mistral", "qwen2", "gemma", "phi3"})
"""Model types whose candidates are scored packed in one row (plain positions, custom 4D masks accepted)."""


def expand_cache(cache: Any, batch: int) -> Any:
    """A copy of a batch-1 KV cache for ``batch`` rows; ``cache`` itself is left untouched.

    Plain ``DynamicLayer`` layers (which grow by concatenation, never in place) get stride-0 ``expand`` views,
    so the prefix is copied once, by that concatenation; any other cache is deep-copied and repeated.
    """
    from transformers.cache_utils import DynamicLayer  # heavy: only model work needs it

    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        new = copy.copy(cache)
        new.layers = []
        for layer in layers:
            twin = copy.copy(layer)
            if twin.get_seq_length() > 0:
                twin.keys = twin.keys.expand(batch, *twin.keys.shape[1:])
                twin.values = twin.values.expand(batch, *twin.values.shape[1:])
            new.layers.append(twin)
        return new
    new = copy.deepcopy(cache)
    new.batch_repeat_interleave(batch)
    return new


class VLM:
    """A loaded vision-language model with its processor (see the module docstring)."""

    def __init__(self, model: Any, processor: Any, name: str, device: str) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self.device = device
        self.dtype = next(model.parameters()).dtype
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        params = inspect.signature(model.forward).parameters
        self._keep_logits = "logits_to_keep" in params
        # transformers >= 5.2x names the KV cache ``cache``; earlier releases ``past_key_values``
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._image_tokens: int | None = None  # measured on first use by prompt_tokens
        # candidates packed into one row with a 4D mask (see _score_shared) where the text model takes plain
        # 1D positions and custom masks; elsewhere (e.g. Qwen2-VL's 3D rope) one row per candidate
        self._packed = getattr(model.config, "model_type", "") in PACKED_SCORING

    @classmethod
    def load(cls, model_id_or_path: str, device: str | None = None, dtype: str | None = None) -> VLM:
        """Load a checkpoint (local folder, or hub id already in the local cache when offline).

        bf16 on CUDA and fp32 on CPU unless ``dtype`` says otherwise. A path or id that cannot be loaded is
        one :class:`UserError` line (see :func:`vlm_classdata.vlm.loading.load_checkpoint`).
        """
        model, processor, device = load_checkpoint(str(model_id_or_path), device, dtype)
        return cls(model, processor, name=str(model_id_or_path), device=device)

    @property
    def tokenizer(self) -> Any:
        """The text tokenizer (the processor itself for text-only checkpoints)."""
        return getattr(self.processor, "tokenizer", self.processor)

    def build_prompt(self, question: str | Sequence[dict], with_image: bool) -> str:
        """The chat-templated conversation plus generation prompt; text-only when ``with_image`` is False.

        ``question`` is the user's text, or a whole conversation (``{"role", "content"}`` dicts with text
        content: system, user and assistant turns); the image goes before the first user turn's text.
        Text-only checkpoints (a tokenizer, no processor) get plain string contents."""
        turns = [{"role": "user", "content": question}] if isinstance(question, str) else list(question)
        multimodal = hasattr(self.processor, "tokenizer")
        if with_image and not multimodal:
            raise UserError(f"model {self.name!r} is text-only: it cannot take an image")
        messages, image_pending = [], with_image
        for turn in turns:
            text = turn["content"]
            if not multimodal:
                messages.append({"role": turn["role"], "content": text})
                continue
            content: list[dict[str, str]] = []
            if image_pending and turn["role"] == "user":
                content.append({"type": "image"})
                image_pending = False
            content.append({"type": "text", "text": text})
            messages.append({"role": turn["role"], "content": content})
        if not getattr(self.processor, "chat_template", None):
            raise UserError(f"model {self.name!r} has no chat template")
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def context_length(self) -> int | None:
        """The longest sequence the text model takes (position embeddings / tokenizer limit), if known."""
        config = self.model.config
        text = getattr(config, "text_config", None) or config
        limits = [getattr(text, "max_position_embeddings", None), getattr(self.tokenizer, "model_max_length", None)]
        known = [int(n) for n in limits if isinstance(n, int) and 0 < n < 10**7]
        return min(known) if known else None

    def prompt_tokens(self, question: str, with_image: bool) -> int:
        """Length in tokens of the templated prompt, image placeholder expanded to the model's image tokens.

        The image's share is measured once on a 336x336 image: exact for fixed-resolution models (LLaVA-1.5),
        an estimate for models whose token count depends on the image size."""
        prompt = self.build_prompt(question, with_image)
        n = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if with_image:
            if self._image_tokens is None:
                probe = self.build_prompt("", True)
                plain = len(self.tokenizer(probe, add_special_tokens=False)["input_ids"])
                enc = self.processor(text=[probe], images=[Image.new("RGB", (336, 336), (127, 127, 127))],
                                     add_special_tokens=False, return_tensors="pt")
                self._image_tokens = int(enc["input_ids"].shape[1]) - plain
            n += self._image_tokens
        return n

    # ------------------------------------------------------------------ encoding

    def _encode(self, prompts: list[str], images: list[Image.Image] | None) -> dict[str, torch.Tensor]:
        """Processor output (left-padded) on the model's device; pixel tensors in the model's dtype."""
        if images:
            enc = self.processor(text=prompts, images=[im.convert("RGB") for im in images],
                                 padding=True, return_tensors="pt")
        else:
            enc = self.tokenizer(prompts, padding=True, return_tensors="pt")
        return {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in enc.items() if hasattr(v, "to")
        }

    # ------------------------------------------------------------------ generation

    def generate(self, items: list[tuple[Image.Image | None, str | Sequence[dict]]],
                 config: GenerationConfig | None = None) -> list[str]:
        """One reply per ``(image or None, question or conversation)`` item (see :meth:`build_prompt`), in input order.

        Image and text-only items go to separate batches; each group is sorted by prompt length and run in
        left-padded batches of ``config.batch_size`` (halved on out-of-memory).
        """
        config = config or GenerationConfig()
        if not items:
            return []
        prompts = [self.build_prompt(q, img is not None) for img, q in items]
        lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        replies: list[str | None] = [None] * len(items)
        for with_image in (True, False):
            idx = [i for i, (img, _) in enumerate(items) if (img is not None) == with_image]
            idx.sort(key=lambda i: (lengths[i], i))

            def run(chunk: list[int], with_image: bool = with_image) -> list[str]:
                images = [items[i][0] for i in chunk] if with_image else None
                return self._generate_batch([prompts[i] for i in chunk], images, config)

            for i, reply in zip(idx, run_with_halving(idx, config.batch_size, run), strict=True):
                replies[i] = reply
        return [r if r is not None else "" for r in replies]

    def generate_each(self, items: list[tuple[Image.Image | None, str | Sequence[dict]]],
                      config: GenerationConfig | None = None) -> list[str | Exception]:
        """Like :meth:`generate`, but an item that makes the model fail gives its exception in its place.

        A batch that fails (other than out-of-memory) is retried item by item, so one bad item costs only
        itself."""
        try:
            return list(self.generate(items, config))
        except Exception as exc:  # noqa: BLE001 - isolate the failing items below
            if is_out_of_memory(exc):  # still out of memory at batch size 1
                raise
            if len(items) == 1:
                log.warning("generation failed for one item: %s", first_line(exc))
                return [exc]
        return [r for item in items for r in self.generate_each([item], config)]

    def _generate_batch(self, prompts: list[str], images: list[Image.Image] | None,
                        config: GenerationConfig) -> list[str]:
        import torch  # heavy: only model work needs it

        enc = self._encode(prompts, images)
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens, "do_sample": config.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if config.do_sample:
            kwargs["temperature"] = config.temperature
        else:  # silence "temperature/top_p is set but do_sample=False" from checkpoint generation configs
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        return [s.strip() for s in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    # ------------------------------------------------------------------ scoring

    def candidate_ids(self, prompt: str, candidates: Sequence[str]) -> list[list[int]]:
        """Token ids of each candidate as the assistant answer after ``prompt``.

        The ids are those of ``prompt + sep + candidate`` minus those of ``prompt`` (``sep`` is a space unless
        the prompt already ends in whitespace), so the boundary is tokenised as in running text; if the prompt
        tokens are not a prefix, the continuation is encoded on its own. Both scoring modes use these ids.
        """
        tok = self.tokenizer
        sep = "" if not prompt or prompt[-1].isspace() else " "
        base = tok(prompt, add_special_tokens=False)["input_ids"]
        fulls = tok([prompt + sep + c for c in candidates], add_special_tokens=False)["input_ids"]
        out: list[list[int]] = []
        for cand, full in zip(candidates, fulls, strict=True):
            if len(full) > len(base) and full[:len(base)] == base:
                ids = list(full[len(base):])
            else:
                ids = list(tok(sep + cand, add_special_tokens=False)["input_ids"])
            if not ids:
                raise UserError(f"candidate {cand!r} has no tokens")
            out.append(ids)
        return out

    def score(self, image: Image.Image | None, question: str, candidates: list[str], mode: str = "shared",
              batch_size: int = 32) -> list[tuple[float, float]]:
        """``(sum, mean)`` log-likelihood of each candidate's tokens as the answer to image + question.

        ``mode="shared"`` runs the prompt once and scores candidates in right-padded batches of
        ``batch_size`` on copies of its KV cache (halved on out-of-memory); ``mode="naive"`` runs one full
        forward pass per candidate. Both agree within float tolerance.
        """
        import torch  # heavy: only model work needs it

        if mode not in ("shared", "naive"):
            raise UserError(f"unknown scoring mode {mode!r} (use 'shared' or 'naive')")
        if not candidates:
            return []
        prompt = self.build_prompt(question, image is not None)
        enc = self._encode([prompt], [image] if image is not None else None)
        cand = self.candidate_ids(prompt, candidates)
        with torch.inference_mode():
            if mode == "naive":
                return [self._score_naive(enc, ids) for ids in cand]
            return self._score_shared(enc, cand, batch_size)

    def _score_naive(self, enc: dict[str, torch.Tensor], ids: list[int]) -> tuple[float, float]:
        import torch  # heavy: only model work needs it

        n_prompt, n = enc["input_ids"].shape[1], len(ids)
        cand = torch.tensor([ids], dtype=enc["input_ids"].dtype, device=self.device)
        inputs = dict(enc, input_ids=torch.cat([enc["input_ids"], cand], 1),
                      attention_mask=torch.cat([enc["attention_mask"], torch.ones_like(cand)], 1))
        if self._keep_logits:
            logits = self.model(**inputs, use_cache=False, logits_to_keep=n + 1).logits[0, :n]
        else:
            logits = self.model(**inputs, use_cache=False).logits[0, n_prompt - 1:n_prompt - 1 + n]
        lp = torch.log_softmax(logits.float(), -1).gather(-1, cand[0, :, None])[:, 0]
        total = float(lp.sum())
        return total, total / n

    def _score_shared(self, enc: dict[str, torch.Tensor], cand: list[list[int]],
                      batch_size: int) -> list[tuple[float, float]]:
        import torch  # heavy: only model work needs it

        extra = {"logits_to_keep": 1} if self._keep_logits else {}
        out = self.model(**enc, use_cache=True, **extra)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)  # predicts each candidate's first token
        prefix_cache = getattr(out, self._cache_arg)
        n_prompt = enc["input_ids"].shape[1]
        pad = self.tokenizer.pad_token_id or 0

        def run_packed(chunk: list[int]) -> list[tuple[float, float]]:
            # all candidates of the chunk in ONE row after the batch-1 prefix cache: each attends to the prefix
            # and to its own earlier tokens (a 4D mask), positions restart after the prefix for each one; the
            # prefix is never copied per candidate
            ids, pos, owner, offset = [], [], [], []
            for k, i in enumerate(chunk):
                for j, token in enumerate(cand[i][:-1]):
                    ids.append(token)
                    pos.append(n_prompt + j)
                    owner.append(k)
                    offset.append(j)
            sums = [float(first[cand[i][0]]) for i in chunk]
            if ids:
                dev = self.device
                own, off = torch.tensor(owner, device=dev), torch.tensor(offset, device=dev)
                own_tokens = (own[:, None] == own[None, :]) & (off[None, :] <= off[:, None])
                mask = torch.cat([own_tokens.new_ones((len(ids), n_prompt)), own_tokens], 1)[None, None]
                logits = self.model(input_ids=torch.tensor([ids], device=dev),
                                    position_ids=torch.tensor([pos], device=dev), attention_mask=mask,
                                    use_cache=True, **{self._cache_arg: expand_cache(prefix_cache, 1)}).logits[0]
                nxt = torch.tensor([t for i in chunk for t in cand[i][1:]], device=dev)
                lp = torch.log_softmax(logits.float(), -1).gather(-1, nxt[:, None])[:, 0].tolist()
                at = 0
                for k, i in enumerate(chunk):
                    n = len(cand[i]) - 1
                    sums[k] += sum(lp[at:at + n])
                    at += n
            return [(s, s / len(cand[i])) for s, i in zip(sums, chunk, strict=True)]

        def run(chunk: list[int]) -> list[tuple[float, float]]:
            if self._packed:
                return run_packed(chunk)
            b, width = len(chunk), max(len(cand[i]) for i in chunk)
            ids = torch.full((b, width), pad, dtype=torch.long, device=self.device)
            mask = torch.zeros((b, width), dtype=torch.long, device=self.device)
            for row, i in enumerate(chunk):
                ids[row, :len(cand[i])] = torch.tensor(cand[i], device=self.device)
                mask[row, :len(cand[i])] = 1
            lp = torch.zeros((b, width), dtype=torch.float32, device=self.device)
            lp[:, 0] = first[ids[:, 0]]
            if width > 1:  # feed tokens 0..width-2 after the shared prefix; they predict tokens 1..width-1
                cache = expand_cache(prefix_cache, b)
                attn = torch.cat([mask.new_ones((b, n_prompt)), mask[:, :-1]], 1)
                logits = self.model(input_ids=ids[:, :-1], attention_mask=attn, use_cache=True,
                                    **{self._cache_arg: cache}).logits
                lp[:, 1:] = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
                del cache, logits
            lp = lp * mask
            sums, counts = lp.sum(1).tolist(), mask.sum(1).tolist()
            return [(s, s / c) for s, c in zip(sums, counts, strict=True)]

        order = sorted(range(len(cand)), key=lambda i: (len(cand[i]), i))  # similar lengths share a batch
        results: list[tuple[float, float]] = [(0.0, 0.0)] * len(cand)
        for i, res in zip(order, run_with_halving(order, batch_size, run), strict=True):
            results[i] = res
        return results
