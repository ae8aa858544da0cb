"""The one vision-language model runtime: :class:`VLM` (load, generate, score) and :class:`GenerationConfig`."""

from vlm_classdata.vlm.runtime import VLM, GenerationConfig, is_out_of_memory, run_with_halving

__all__ = ["VLM", "GenerationConfig", "is_out_of_memory", "run_with_halving"]
