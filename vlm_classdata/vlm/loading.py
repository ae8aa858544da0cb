"""Loading a checkpoint: device and dtype, the model class, and one clear line when a file is damaged."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlm_classdata.errors import UserError, first_line
from vlm_classdata.extras import require

if TYPE_CHECKING:
    import torch

_DTYPES = {
    "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16", "half": "float16",
    "fp32": "float32", "float32": "float32", "float": "float32",
}


def resolve_device_dtype(device: str | None, dtype: str | None) -> tuple[str, torch.dtype]:
    """``(device, torch dtype)``: CUDA when available else CPU; bf16 on CUDA, fp32 on CPU unless ``dtype``."""
    require("vlm")
    import torch  # heavy: only model work needs it

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available")
    if dtype is None or dtype == "auto":
        name = "bfloat16" if device.startswith("cuda") else "float32"
    elif str(dtype).removeprefix("torch.") in _DTYPES:
        name = _DTYPES[str(dtype).removeprefix("torch.")]
    else:
        raise UserError(f"unknown dtype {dtype!r} (use one of: {', '.join(sorted(_DTYPES))})")
    return device, getattr(torch, name)


def _load_model(source: str, torch_dtype: torch.dtype) -> Any:
    """``AutoModelForImageTextToText``, else the family class named in ``config.architectures``."""
    require("vlm")
    import transformers  # heavy: only loading a model needs it
    from transformers import AutoConfig, AutoModelForImageTextToText  # heavy: only model work needs it

    try:
        return AutoModelForImageTextToText.from_pretrained(source, dtype=torch_dtype)
    except ValueError as exc:  # "Unrecognized configuration class ..." when the auto class does not map it
        first = exc
    config = AutoConfig.from_pretrained(source)
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if cls is not None and hasattr(cls, "from_pretrained"):
            return cls.from_pretrained(source, dtype=torch_dtype)
    raise UserError(f"cannot load model {source!r}: {first_line(first)}")


def _safetensors_errors() -> tuple[type[BaseException], ...]:
    """The error type ``safetensors`` raises for a damaged file (absent when it is not installed)."""
    try:
        from safetensors import SafetensorError  # optional: may be absent
    except ImportError:
        return ()
    return (SafetensorError,)


def damaged_checkpoint_file(folder: Path) -> str | None:
    """``"<file>: <cause>"`` for the first damaged file of a saved checkpoint (a JSON file that does not parse,
    a ``.safetensors`` file whose header or size is wrong), None when every file reads.

    Called after a load failed, so the one-line error names the file instead of the library's message."""
    require("vlm")
    from safetensors import safe_open  # heavy: only a failed load needs it

    folder = Path(folder)
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            return f"{path}: not valid JSON ({first_line(exc)})"
        except OSError as exc:
            return f"{path}: {exc.strerror or first_line(exc)}"
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except OSError as exc:
            return f"{path}: {exc.strerror or first_line(exc)}"
        except Exception as exc:  # noqa: BLE001 - SafetensorError and friends: the file is damaged
            return f"{path}: damaged or truncated safetensors file ({first_line(exc)})"
    return None


def model_source(model_id_or_path: str) -> str:
    """The folder (or hub id) to load ``model_id_or_path`` from; a local-looking path that is not a folder is
    one :class:`UserError` line."""
    src = str(model_id_or_path)
    path = Path(src).expanduser()
    looks_local = path.exists() or src.startswith(("/", ".", "~")) or src.count("/") > 1
    if looks_local and not path.is_dir():
        raise UserError(f"model path {src!r} not found (expected a folder saved with save_pretrained)")
    return str(path) if path.is_dir() else src


def load_checkpoint(src: str, device: str | None = None, dtype: str | None = None) -> tuple[Any, Any, str]:
    """``(model, processor, device)`` of a checkpoint (local folder, or hub id in the local cache when offline),
    the model on ``device`` in eval mode. A path or id that cannot be loaded is one :class:`UserError` line naming
    the damaged file when a local checkpoint has one."""
    require("vlm")
    from transformers import AutoProcessor  # heavy: only model work needs it

    device, torch_dtype = resolve_device_dtype(device, dtype)
    source = model_source(src)
    path = Path(source)
    try:
        processor = AutoProcessor.from_pretrained(source)
        model = _load_model(source, torch_dtype)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, ImportError, RuntimeError, EOFError, pickle.UnpicklingError,
            *_safetensors_errors()) as exc:
        if path.is_dir():
            damaged = damaged_checkpoint_file(path)
            cause = damaged or first_line(exc)
            raise UserError(f"cannot load model {src!r}: {cause}") from None
        hint = " (offline: is it in the local Hugging Face cache?)"
        raise UserError(f"cannot load model {src!r}{hint}: {first_line(exc)}") from None
    model.to(device).eval()
    return model, processor, device
