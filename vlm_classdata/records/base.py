"""The base of every typed record: a JSON file one command writes and another reads.

A :class:`Record` is a pydantic model validated on read (:meth:`Record.read`: one :class:`UserError` line naming
the file and the first bad field) and written in its file's layout (:meth:`Record.write`: exactly the bytes the
writer wrote before records existed). Fields a writer left out stay out; keys a record does not declare are
kept (``extra="allow"``), so nothing a writer adds is lost or rejected; keys keep the order they were given in. ``schema_version`` is
never written by today's writers: a file without one is version 1; a newer version than the reader knows is
refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from vlm_classdata.atomic import json_text, write_text_atomic
from vlm_classdata.errors import UserError, read_user_json

#: a JSON number kept as written (an int stays an int, a float a float)
Num = StrictInt | StrictFloat
#: how a record's file is laid out (each as its writer has always written it): the project's layout
#: (:func:`vlm_classdata.atomic.json_text`); ``sorted_ascii``: indent 2, sorted keys, ASCII escapes, no final
#: newline; ``sorted``: indent 2, sorted keys, non-ASCII kept, final newline; ``ordered``: indent 2 in field
#: order, non-ASCII kept, final newline
Layout = Literal["project", "sorted_ascii", "sorted", "ordered"]

R = TypeVar("R", bound="Record")


def _plain(value: Any) -> Any:
    """``value`` with every :class:`Section` in it turned back into its dict."""
    if isinstance(value, Section):
        return value.to_obj()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Section(BaseModel):
    """A nested part of a record: declared fields typed, any other key kept as written, keys in the order
    they were given."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    _key_order: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_order(cls, data: Any, handler: Any) -> Any:
        part = handler(data)
        if isinstance(data, dict) and isinstance(part, Section):
            part._key_order = list(data)
        return part

    def to_obj(self) -> dict[str, Any]:
        """The part as the plain dict its writer wrote: the keys it set (none it left out), in its order."""
        fields = type(self).model_fields
        items = {(info.alias or name): _plain(getattr(self, name))
                 for name, info in fields.items() if name in self.model_fields_set}
        items.update((k, _plain(v)) for k, v in (self.__pydantic_extra__ or {}).items())
        order = [k for k in self._key_order if k in items]
        return {**{k: items[k] for k in order}, **{k: v for k, v in items.items() if k not in order}}


class Record(Section):
    """A JSON file with a known shape; subclasses set :attr:`WHAT` (for messages) and :attr:`LAYOUT`."""

    WHAT: ClassVar[str] = "record"
    LAYOUT: ClassVar[Layout] = "project"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = 1

    @classmethod
    def from_obj(cls: type[R], data: Any, source: str | Path) -> R:
        """Validate parsed JSON ``data`` read from ``source``; UserError naming the first bad field."""
        if not isinstance(data, dict):
            raise UserError(f"{cls.WHAT} {source}: not a JSON object")
        try:
            record = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise UserError(f"{cls.WHAT} {source}: field {where!r}: {err['msg']}") from None
        if record.schema_version > cls.SCHEMA_VERSION:
            raise UserError(f"{cls.WHAT} {source}: schema_version {record.schema_version} is newer than this "
                            f"tool reads ({cls.SCHEMA_VERSION}); update vlm-classdata")
        return record

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        """Read and validate the file at ``path`` (UserError for a missing, malformed or mistyped file)."""
        try:
            data = read_user_json(path, cls.WHAT)
        except OSError as exc:  # e.g. no permission to read it
            raise UserError(f"{cls.WHAT} {path}: cannot be read ({exc})") from None
        return cls.from_obj(data, path)

    def text(self) -> str:
        """The file's text in the record's layout."""
        obj = self.to_obj()
        if self.LAYOUT == "sorted_ascii":
            return json.dumps(obj, indent=2, sort_keys=True)
        if self.LAYOUT == "sorted":
            return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if self.LAYOUT == "ordered":
            return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
        return json_text(obj)

    def write(self, path: str | Path) -> None:
        """Write the record to ``path`` atomically, in its layout."""
        write_text_atomic(Path(path), self.text())
