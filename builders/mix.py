"""Mix built LLaVA training JSON with an existing LLaVA instruction set (the paper's ImageNet+LLaVA recipe)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from core.errors import UserError


def mix_llava_json(llava_dir: Path, other: str | os.PathLike, seed: int, split: str = "train") -> dict:
    """Write ``llava_dir/{split}_mixed.json``: our samples + ``other``'s, in one seeded shuffle.

    Image paths are kept as they are: ours are relative to our image root (use ``--image-prefix`` to place
    them under the same root as the other set, e.g. ``imagenet/``).
    """
    ours_path = Path(llava_dir) / f"{split}.json"
    if not ours_path.is_file():
        raise UserError(f"--mix-with needs the llava output of split {split!r}, which this build has not")
    try:
        theirs = json.loads(Path(other).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--mix-with {other}: cannot read a LLaVA JSON list ({exc})") from None
    if not isinstance(theirs, list):
        raise UserError(f"--mix-with {other}: expected a JSON list of conversations")
    ours = json.loads(ours_path.read_text())
    ids = {str(x.get("id")) for x in theirs if isinstance(x, dict)}
    clashes = sum(1 for x in ours if str(x["id"]) in ids)
    if clashes:
        raise UserError(f"--mix-with: {clashes} sample ids of this build also occur in {other}")
    merged = ours + theirs
    random.Random(seed).shuffle(merged)
    final = Path(llava_dir) / f"{split}_mixed.json"
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write("[\n")
        for i, item in enumerate(merged):
            f.write(("," if i else "") + json.dumps(item, ensure_ascii=False) + "\n")
        f.write("]\n")
    os.replace(tmp, final)
    return {"file": os.path.join(Path(llava_dir).name, final.name), "ours": len(ours), "theirs": len(theirs),
            "total": len(merged), "source": os.path.basename(str(other))}
