"""A local transformers model as a text backend, with the same interface as the HTTP chat client.

:class:`LocalChatModel` answers :class:`~imagewikiqa.llm_client.ChatRequest` conversations with a checkpoint
loaded through the project's one model runtime (:class:`vlm_classdata.vlm.VLM`: a causal LM, or a VLM used
text-only), in length-sorted batches. Replies go to the same on-disk :class:`~imagewikiqa.llm_client.ReplyCache`
as the HTTP client's, keyed by the checkpoint name and the request, so a stopped generation or verification
run resumes where it stopped. Greedy decoding when ``temperature`` is 0, sampling (seeded) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imagewikiqa.chat import ChatBackend, ChatRequest, ChatResult, ReplyCache
from vlm_classdata.extras import require
from vlm_classdata.progress import make_bar
from vlm_classdata.vlm.runtime import VLM, GenerationConfig


class LocalChatModel(ChatBackend):
    """Chat completions from a local checkpoint; ``req.model`` is informational (the loaded model answers)."""

    def __init__(self, vlm: VLM, cache_dir: str | Path | None = None, batch_size: int = 8) -> None:
        self.vlm = vlm
        self.name = vlm.name
        self.cache = ReplyCache(cache_dir)
        self.batch_size = int(batch_size)

    @classmethod
    def load(cls, model: str, device: str | None = None, dtype: str | None = None,
             cache_dir: str | Path | None = None, batch_size: int = 8) -> LocalChatModel:
        """Load ``model`` (a local folder, or a hub id already in the local cache) with :meth:`VLM.load`."""
        require("vlm", "a local model")
        return cls(VLM.load(model, device=device, dtype=dtype), cache_dir=cache_dir, batch_size=batch_size)

    def _key(self, req: ChatRequest) -> str:
        return req.key(f"local:{self.name}")

    def complete_many(self, reqs: Sequence[ChatRequest], progress: bool = False) -> list[ChatResult]:
        """Answer from the cache where possible; the rest in batches grouped by decoding settings."""
        require("vlm", "a local model")
        import torch  # heavy: only a local model needs it

        reqs = list(reqs)
        results: list[ChatResult | None] = [self.cache.get(self._key(r)) for r in reqs]
        todo = [i for i, r in enumerate(results) if r is None]
        groups: dict[tuple[int, float, int | None], list[int]] = {}
        for i in todo:
            r = reqs[i]
            groups.setdefault((int(r.max_tokens), float(r.temperature), r.seed), []).append(i)
        bar = make_bar(total=len(todo), desc=f"local {Path(self.name).name}", unit="req",
                       disable=not progress or not todo)
        try:
            for (max_tokens, temperature, seed), idx in groups.items():
                if temperature > 0:
                    torch.manual_seed(seed or 0)
                config = GenerationConfig(max_new_tokens=max_tokens, do_sample=temperature > 0,
                                          temperature=temperature or 1.0, batch_size=self.batch_size)
                for start in range(0, len(idx), max(1, self.batch_size) * 4):
                    chunk = idx[start:start + max(1, self.batch_size) * 4]
                    replies = self.vlm.generate_each([(None, reqs[i].messages) for i in chunk], config)
                    for i, reply in zip(chunk, replies, strict=True):
                        if isinstance(reply, Exception):
                            results[i] = ChatResult(text=None, error=f"model_error: {type(reply).__name__}: "
                                                                     f"{str(reply).splitlines()[0] if str(reply) else ''}")
                            continue
                        self.cache.put(self._key(reqs[i]), {"model": self.name, "request": reqs[i].payload(),
                                                            "text": reply})
                        results[i] = ChatResult(text=reply, error=None, attempts=1)
                    bar.update(len(chunk))
        finally:
            bar.close()
        return [r if r is not None else ChatResult(text=None, error="no_result") for r in results]
