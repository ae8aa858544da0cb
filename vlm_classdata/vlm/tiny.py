"""Tiny LLaVA checkpoints, built fully offline, for tests and timings: randomly initialised, or *scripted*.

A checkpoint is saved with ``save_pretrained`` (model, processor, tokenizer, chat template) so that loading it
back with ``from_pretrained`` takes the same path as a real checkpoint.

A random tiny model answers gibberish, so tests could only check that passes run, not that they judge right. A
scripted model (:func:`make_scripted_llava`) is the same architecture with weights edited so that greedy decoding
after the ``ASSISTANT:`` token always produces ``reply`` and then ``</s>``:

* every attention output and MLP output projection is zero, so each position's hidden state is its own
  token embedding (the image and the question do not change the answer);
* the embedding of the i-th token of the chain ``ASSISTANT: t1 … tn`` is the i-th unit vector, every other
  embedding is zero;
* the output row of token ``t(i+1)`` (``</s>`` after ``tn``) is ``scale`` times the i-th unit vector.

So ``P(t(i+1) | … t(i)) ≈ 1`` and the log-likelihood of ``reply`` as an answer is close to 0 while any other
candidate's is far below: rank passes rank it first.

``python -m vlm_classdata.vlm.tiny OUT [--reply TEXT] [--seed N]`` saves one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlm_classdata.errors import run_cli
from vlm_classdata.extras import require

# LLaVA-1.5 style: "USER: <image>\n{text} ASSISTANT:" (string or list content; assistant turns end with </s>).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set text = message['content'] %}{% set n_img = 0 %}"
    "{% else %}{% set text = message['content'] | selectattr('type', 'equalto', 'text') "
    "| map(attribute='text') | join(' ') %}"
    "{% set n_img = message['content'] | selectattr('type', 'equalto', 'image') | list | length %}{% endif %}"
    "{% if message['role'] == 'user' %}USER: {{ '<image>\n' * n_img }}{{ text }} "
    "{% elif message['role'] == 'assistant' %}ASSISTANT: {{ text }}</s>"
    "{% else %}{{ text }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

_CORPUS = """\
USER: What is shown in this image? ASSISTANT: A photo of a tench, a freshwater fish.
USER: Describe the image. ASSISTANT: The picture shows a goldfish swimming in a bowl of clear water.
USER: Which animal is this? ASSISTANT: This is a great white shark near the surface of the ocean.
USER: Is there a dog in the picture? ASSISTANT: Yes, there is a golden retriever playing on the grass.
USER: What color is the car? ASSISTANT: The car is red and it is parked next to a white house.
The quick brown fox jumps over the lazy dog. A cat sleeps on the warm windowsill in the afternoon sun.
Answer with the letter of the correct option: A, B, C or D. The answer is B. The answer is a bird.
Tree frog, bullfrog, loggerhead turtle, leatherback turtle, mud turtle, banded gecko, common iguana.
Espresso, cheeseburger, pizza, bagel, pretzel, mushroom, orange, lemon, banana, pineapple, strawberry.
airliner, warplane, airship, canoe, container ship, speedboat, school bus, fire engine, tractor, bicycle.
"""

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<image>"]
ROLE_TOKENS = ["USER:", "ASSISTANT:"]


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on a small built-in text; BOS ``<s>`` is added to every sequence."""
    require("vlm")
    import tokenizers  # heavy: only building a checkpoint needs the tokenizer stack
    from transformers import PreTrainedTokenizerFast  # heavy: only building a checkpoint needs transformers

    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    tok.add_tokens([tokenizers.AddedToken(t, normalized=False) for t in ROLE_TOKENS])
    bos = tok.token_to_id("<s>")
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"}, padding_side="left",
        model_max_length=2048, chat_template=CHAT_TEMPLATE,
    )


def build_processor(image_size: int = 32, patch_size: int = 8, tokenizer=None):
    """The ``LlavaProcessor`` of :func:`make_tiny_llava`: CLIP image processor (``image_size`` shortest edge and
    centre crop), the :func:`build_tokenizer` tokenizer (unless one is given) and the LLaVA-1.5 chat template;
    ``<image>`` expands to ``(image_size // patch_size) ** 2`` tokens."""
    require("vlm")
    from transformers import CLIPImageProcessorPil, LlavaProcessor  # heavy: only building needs it

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
        vision_feature_select_strategy="default", num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )


def llava_config(tokenizer, text_hidden: int = 64, text_layers: int = 2, image_size: int = 32, patch_size: int = 8,
                 *, text_intermediate: int | None = None, text_heads: int = 4, vocab_size: int | None = None,
                 vision_hidden: int = 32, vision_intermediate: int | None = None, vision_layers: int = 2,
                 vision_heads: int = 4, vision_feature_layer: int = -1, projection_dim: int = 32,
                 initializer_range: float = 0.1, max_positions: int = 2048):
    """A ``LlavaConfig`` (CLIP vision tower + Llama text model) for ``tokenizer``; the defaults are
    :func:`make_tiny_llava`'s. Intermediate sizes default to twice the hidden size; ``vocab_size`` defaults to
    the tokenizer's size (a larger one is fine: the extra ids are never produced by the tokenizer)."""
    require("vlm")
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig  # heavy: only building needs it

    vision = CLIPVisionConfig(
        hidden_size=vision_hidden, intermediate_size=vision_intermediate or 2 * vision_hidden,
        num_hidden_layers=vision_layers, num_attention_heads=vision_heads, image_size=image_size,
        patch_size=patch_size, projection_dim=projection_dim,
    )
    text = LlamaConfig(
        vocab_size=vocab_size or len(tokenizer), hidden_size=text_hidden,
        intermediate_size=text_intermediate or 2 * text_hidden, num_hidden_layers=text_layers,
        num_attention_heads=text_heads, num_key_value_heads=text_heads, max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, initializer_range=initializer_range,
    )
    return LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(image_size // patch_size) ** 2, vision_feature_select_strategy="default",
        vision_feature_layer=vision_feature_layer,
    )


def make_tiny_llava(path: str, seed: int = 0, text_hidden: int = 64, text_layers: int = 2,
                    image_size: int = 32, patch_size: int = 8, **sizes) -> str:
    """Build and save a tiny random ``LlavaForConditionalGeneration`` (+ processor, tokenizer, chat template).

    CLIP vision tower: hidden 32, 2 layers, ``image_size``/``patch_size`` (default 32/8: 16 image tokens; 336/14
    gives LLaVA-1.5's 576); Llama text model: hidden ``text_hidden``, ``text_layers`` layers, 4 heads.
    Further keyword arguments (``vision_hidden``, ``vision_layers``, ``vocab_size``, ``vision_feature_layer``,
    ...) go to :func:`llava_config`. Deterministic given ``seed``. Returns ``path``.
    """
    require("vlm")
    import torch  # heavy: only building a checkpoint needs it
    from transformers import LlavaForConditionalGeneration  # heavy, as torch

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    processor = build_processor(image_size, patch_size, tokenizer)
    config = llava_config(tokenizer, text_hidden, text_layers, image_size, patch_size, **sizes)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return str(out)


def make_tiny_causal_lm(path: str, seed: int = 0, hidden: int = 64, layers: int = 2) -> str:
    """Build and save a tiny random text-only ``LlamaForCausalLM`` with the same tokenizer and chat template
    (no processor): the local text-generation backend's test model. Deterministic given ``seed``."""
    require("vlm")
    import torch  # heavy: only building a checkpoint needs it
    from transformers import LlamaForCausalLM  # heavy, as torch

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llava_config(tokenizer, text_hidden=hidden, text_layers=layers).text_config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def make_scripted_llava(path: str, reply: str, seed: int = 0, scale: float = 30.0) -> str:
    """Build and save a tiny LLaVA (see the module docstring) that always answers ``reply``; returns ``path``.

    Raises ValueError when the reply's tokens repeat (the chain needs distinct tokens) or outnumber the
    hidden size."""
    require("vlm")
    import torch  # heavy: only building a checkpoint needs it
    from transformers import AutoProcessor, LlavaForConditionalGeneration  # heavy, as torch

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


def main(argv: list[str] | None = None) -> int:
    """``python -m vlm_classdata.vlm.tiny OUT [--reply TEXT] [--seed N]``: save a tiny random (or scripted) LLaVA."""
    p = argparse.ArgumentParser(prog="python -m vlm_classdata.vlm.tiny",
                                description="Save a tiny randomly initialised LLaVA checkpoint (offline), to try "
                                            "the verification passes without downloading a model.")
    p.add_argument("out", help="folder to save the checkpoint in")
    p.add_argument("--reply", help="script the weights so that the model always answers this text")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.reply:
        make_scripted_llava(args.out, args.reply, seed=args.seed)
    else:
        make_tiny_llava(args.out, seed=args.seed)
    print(f"saved {'scripted' if args.reply else 'random'} tiny LLaVA → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
