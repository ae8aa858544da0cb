"""The one vision-language model runtime: :class:`VLM` (load, generate, score) and :class:`GenerationConfig`.

Modules: :mod:`.runtime` (the model), :mod:`.loading` (checkpoints, device, dtype), :mod:`.batching`
(batches halved on out-of-memory), :mod:`.tiny` (tiny random or scripted checkpoints for tests and timings).
"""

from vlm_classdata.vlm.batching import is_out_of_memory, run_with_halving
from vlm_classdata.vlm.runtime import VLM, GenerationConfig

__all__ = ["VLM", "GenerationConfig", "is_out_of_memory", "run_with_halving"]
