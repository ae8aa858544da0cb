"""Mix built LLaVA training JSON with an existing LLaVA instruction set (the paper's ImageNet+LLaVA recipe).

The set to mix with is loaded and checked before the build starts (:func:`load_mix`, :func:`check_clashes`);
the merge itself (:func:`mix_llava_json`) runs when the build is finalised.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vlm_classdata.atomic import atomic_output
from vlm_classdata.errors import UserError


@dataclass
class MixSet:
    """The rows of a LLaVA instruction set to mix with (checked: each has an ``id`` and ``conversations``)."""

    path: str
    rows: list[dict]

    def ids(self) -> set[str]:
        """The sample ids, as text (LLaVA ids may be numbers)."""
        return {str(row["id"]) for row in self.rows}


def _parse(path: str, text: str) -> list:
    """A JSON list, or the rows of a JSON Lines file; one UserError line for anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        if not text.lstrip().startswith("{"):
            raise UserError(f"--mix-with {path}: not valid JSON ({exc})") from None
        rows = []  # JSON Lines: one LLaVA row per line
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as line_exc:
                raise UserError(f"--mix-with {path}: line {n} is not JSON ({line_exc})") from None
        return rows
    if isinstance(data, dict):
        raise UserError(f"--mix-with {path}: a JSON object, expected a JSON list of LLaVA rows "
                        "(or JSON Lines, one row per line)")
    if not isinstance(data, list):
        raise UserError(f"--mix-with {path}: expected a JSON list of LLaVA rows, found {type(data).__name__}")
    return data


def load_mix(path: str | os.PathLike) -> MixSet:
    """Read and check a LLaVA instruction set (JSON list or JSON Lines of ``{id, conversations, ...}``)."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"--mix-with {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = _parse(path, text)
    if not rows:
        raise UserError(f"--mix-with {path}: holds no rows, nothing to mix with")
    for i, row in enumerate(rows):
        problem = None
        if not isinstance(row, dict):
            problem = f"is a {type(row).__name__}, not an object"
        elif isinstance(row.get("id"), bool) or not isinstance(row.get("id"), (str, int)):
            problem = "has no 'id' (a string or an integer)"
        elif not isinstance(row.get("conversations"), list):
            problem = "has no 'conversations' list"
        if problem:
            raise UserError(f"--mix-with {path}: row {i + 1} {problem}; expected LLaVA rows "
                            "{id, image, conversations}")
    return MixSet(path, rows)


def check_clashes(mix: MixSet, our_ids: Iterable[str]) -> None:
    """UserError when a sample id of this build also occurs in the set to mix with."""
    theirs = mix.ids()
    clashes = sorted({i for i in our_ids if i in theirs})
    if clashes:
        shown = ", ".join(clashes[:3]) + (", ..." if len(clashes) > 3 else "")
        raise UserError(f"--mix-with: {len(clashes)} sample id(s) of this build also occur in {mix.path} "
                        f"({shown}); ids must be unique in the mixed file")


def mix_llava_json(llava_dir: Path, mix: MixSet, seed: int, split: str = "train") -> dict:
    """Write ``llava_dir/{split}_mixed.json``: our samples + ``mix``'s, in one seeded shuffle.

    Image paths are kept as they are: ours are relative to our image root (use ``--image-prefix`` to place
    them under the same root as the other set, e.g. ``imagenet/``).
    """
    ours_path = Path(llava_dir) / f"{split}.json"
    if not ours_path.is_file():
        raise UserError(f"--mix-with needs the llava output of split {split!r}, which this build has not")
    ours = json.loads(ours_path.read_text(encoding="utf-8"))
    check_clashes(mix, (str(x["id"]) for x in ours))
    merged = ours + mix.rows
    random.Random(seed).shuffle(merged)
    final = Path(llava_dir) / f"{split}_mixed.json"
    with atomic_output(final) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("[\n")
        for i, item in enumerate(merged):
            f.write(("," if i else "") + json.dumps(item, ensure_ascii=False) + "\n")
        f.write("]\n")
    return {"file": os.path.join(Path(llava_dir).name, final.name), "ours": len(ours), "theirs": len(mix.rows),
            "total": len(merged), "source": os.path.basename(mix.path)}
