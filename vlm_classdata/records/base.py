"""The base of every typed record: a JSON file one command writes and another reads.

A :class:`Record` is a pydantic model validated on read (:meth:`Record.read`: one :class:`UserError` line naming
the file and the first bad field) and written in its file's layout (:meth:`Record.write`: exactly the bytes the
writer wrote before records existed). Fields a writer left out stay out (``exclude_unset``); keys a record does
not declare are kept (``extra="allow``), so nothing a writer adds is lost or rejected. ``schema_version`` is
never written by today's writers: a file without one is version 1; a newer version than the reader knows is
refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, ValidationError

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


class Section(BaseModel):
    """A nested part of a record: declared fields typed, any other key kept as written."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_obj(self) -> dict[str, Any]:
        """The part as the plain dict its writer wrote (keys it did not set left out)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


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
