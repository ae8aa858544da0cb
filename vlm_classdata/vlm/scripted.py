"""Tiny LLaVA checkpoints whose weights are set by hand so that they always give one known reply.

A random tiny model answers gibberish, so tests could only check that passes run, not that they judge
right. A *scripted* model is the same architecture (built by :func:`vlm_classdata.vlm.tiny.make_tiny_llava`,
saved with ``save_pretrained`` and loaded back through the real path), with weights edited so that greedy
decoding after the ``ASSISTANT:`` token always produces ``reply`` and then ``</s>``:

* every attention output and MLP output projection is zero, so each position's hidden state is its own
  token embedding (the image and the question do not change the answer);
* the embedding of the i-th token of the chain ``ASSISTANT: t1 … tn`` is the i-th unit vector, every other
  embedding is zero;
* the output row of token ``t(i+1)`` (``</s>`` after ``tn``) is ``scale`` times the i-th unit vector.

So ``P(t(i+1) | … t(i)) ≈ 1`` and the log-likelihood of ``reply`` as an answer is close to 0 while any other
candidate's is far below: rank passes rank it first.
"""

from __future__ import annotations

from pathlib import Path


def make_scripted_llava(path: str, reply: str, seed: int = 0, scale: float = 30.0) -> str:
    """Build and save a tiny LLaVA (see the module docstring) that always answers ``reply``; returns ``path``.

    Raises ValueError when the reply's tokens repeat (the chain needs distinct tokens) or outnumber the
    hidden size."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from vlm_classdata.vlm.tiny import make_tiny_llava

    make_tiny_llava(path, seed=seed)
    processor = AutoProcessor.from_pretrained(path)
    tok = processor.tokenizer
    model = LlavaForConditionalGeneration.from_pretrained(path)
    chain = [tok.convert_tokens_to_ids("ASSISTANT:"), *tok(" " + reply, add_special_tokens=False)["input_ids"]]
    hidden = model.config.text_config.hidden_size
    if len(set(chain)) != len(chain):
        raise ValueError(f"reply {reply!r} repeats a token; a scripted model needs distinct tokens")
    if len(chain) > hidden:
        raise ValueError(f"reply {reply!r} has more tokens than the hidden size {hidden}")
    targets = [*chain[1:], tok.eos_token_id]
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        emb.zero_()
        head.zero_()
        for i, (token, nxt) in enumerate(zip(chain, targets, strict=True)):
            emb[token, i] = 1.0
            head[nxt, i] = scale
    model.save_pretrained(Path(path))
    return str(path)
