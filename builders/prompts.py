"""Prompt templates as data: named template sets loaded from JSON, picked with a per-sample RNG.

File shape (the bundled ``builders/prompts.json``)::

    {"version": 1, "sets": {"instruct": [{"id": "instruct-01", "text": "What type of ..."}, ...], ...}}

A plain ``{"<set>": [...]}`` mapping without ``"sets"`` is accepted too. A user file given to
:meth:`PromptRegistry.load` replaces every bundled set it names and adds the sets it introduces; all
other bundled sets are kept. Template ids must be unique across the resulting registry.

Sets used by the tasks: ``instruct``, ``open``, ``open_cot``, ``mcq`` (stems), ``mcq_instruction``,
``mcq_cot_instruction``, ``list_instruction`` and ``list_cot_instruction`` (more than 26 choices).
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

from vlm_classdata.errors import UserError, read_user_json

#: the sets the bundled tasks rely on (a registry missing one fails only when a task asks for it)
TASK_SETS = ("instruct", "open", "open_cot", "mcq", "mcq_instruction", "mcq_cot_instruction",
             "list_instruction", "list_cot_instruction")


def _parse(data: object, origin: str) -> dict[str, list[tuple[str, str]]]:
    """Validate one prompts document and return ``{set: [(id, text), ...]}``."""
    if not isinstance(data, dict):
        raise UserError(f"prompts file {origin}: expected a JSON object with a \"sets\" mapping")
    # a plain {set: [...]} mapping is accepted too; its top-level metadata keys (not lists) are ignored
    sets = data["sets"] if "sets" in data else {k: v for k, v in data.items() if isinstance(v, list)}
    if not isinstance(sets, dict) or not sets:
        raise UserError(f"prompts file {origin}: no template sets found (expected {{\"sets\": {{name: [...]}}}})")
    out: dict[str, list[tuple[str, str]]] = {}
    for name, items in sets.items():
        if not isinstance(items, list) or not items:
            raise UserError(f"prompts file {origin}: set {name!r} must be a non-empty list of templates")
        parsed = []
        for i, item in enumerate(items):
            if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].strip()
                    and isinstance(item.get("text"), str) and item["text"].strip()):
                raise UserError(f"prompts file {origin}: set {name!r} item {i} needs a non-empty "
                                f"string \"id\" and \"text\"")
            parsed.append((item["id"].strip(), item["text"].strip()))
        out[str(name)] = parsed
    return out


class PromptRegistry:
    """Template sets by name; each template is an ``(id, text)`` pair."""

    def __init__(self, sets: dict[str, list[tuple[str, str]]], sources: list[str] | None = None) -> None:
        self._sets = {k: list(v) for k, v in sets.items()}
        self.sources = list(sources or [])
        seen: dict[str, str] = {}
        for name, items in self._sets.items():
            for tid, _ in items:
                if tid in seen:
                    raise UserError(f"prompt template id {tid!r} is used twice (sets {seen[tid]!r} and {name!r})")
                seen[tid] = name

    @classmethod
    def load(cls, path: str | Path | None = None) -> PromptRegistry:
        """The bundled templates, with the sets of the user JSON at ``path`` (if given) replacing/added."""
        text = resources.files("builders").joinpath("prompts.json").read_text(encoding="utf-8")
        sets = _parse(json.loads(text), "builders/prompts.json")
        sources = ["bundled:builders/prompts.json"]
        if path is not None:
            p = Path(path)
            data = read_user_json(p, "prompts file")
            sets.update(_parse(data, str(path)))
            sources.append(str(p))
        return cls(sets, sources)

    @property
    def set_names(self) -> list[str]:
        return list(self._sets)

    def templates(self, set_name: str) -> list[tuple[str, str]]:
        """All ``(id, text)`` templates of one set; UserError for an unknown set."""
        try:
            return list(self._sets[set_name])
        except KeyError:
            raise UserError(f"unknown prompt template set {set_name!r}; "
                            f"available: {', '.join(self._sets)}") from None

    def ids(self, set_name: str) -> list[str]:
        """Template ids of one set, in file order."""
        return [tid for tid, _ in self.templates(set_name)]

    def first(self, set_name: str) -> tuple[str, str]:
        """The first (canonical) template of a set."""
        return self.templates(set_name)[0]

    def choose(self, set_name: str, rng: random.Random) -> tuple[str, str]:
        """One template of ``set_name`` picked uniformly with ``rng`` (one ``randrange`` draw)."""
        items = self.templates(set_name)
        return items[rng.randrange(len(items))]

    def describe(self) -> dict:
        """All templates, JSON-able, for the manifest."""
        return {"sources": list(self.sources),
                "sets": {name: [{"id": tid, "text": text} for tid, text in items]
                         for name, items in self._sets.items()}}
