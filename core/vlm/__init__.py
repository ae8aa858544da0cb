"""The one vision-language model runtime: :class:`VLM` (load, generate, score) and :class:`GenerationConfig`."""

from core.vlm.runtime import VLM, GenerationConfig, is_out_of_memory, run_with_halving

__all__ = ["VLM", "GenerationConfig", "is_out_of_memory", "run_with_halving"]
