"""A scripted lmms-eval model for tests (runs inside lmms-eval's environment, never imported by pytest).

It answers each request from a JSON script ``{task: {row id: reply}}`` (``--model_args script=PATH``), and checks that the task hands it one RGB PIL image per row. It registers through
lmms-eval's supported plugin route, the ``lmms_eval.models`` entry-point group (see
``tests/test_consumer_lmms_eval.py``, which writes the distribution metadata naming :data:`MANIFEST`).
"""

from __future__ import annotations

import json

from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from PIL import Image

MODEL_ID = "vlmcd_scripted"
MANIFEST = ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.ScriptedModel")


class ScriptedModel(lmms):
    """Replies from a script keyed by task and the row's ``id``; a row missing from the script is an error."""

    is_simple = True

    def __init__(self, script: str, **_: object) -> None:
        super().__init__()
        with open(script, encoding="utf-8") as f:
            self.script: dict[str, dict[str, str]] = json.load(f)

    def generate_until(self, requests) -> list[str]:
        replies = []
        for _context, _gen_kwargs, doc_to_visual, doc_id, task, split in [r.args for r in requests]:
            doc = self.task_dict[task][split][doc_id]
            visuals = doc_to_visual(doc)
            if len(visuals) != 1 or not isinstance(visuals[0], Image.Image) or visuals[0].mode != "RGB":
                raise TypeError(f"row {doc['id']}: expected one RGB PIL image, got {visuals!r}")
            replies.append(self.script[task][doc["id"]])
        return replies

    def generate_until_multi_round(self, requests) -> list[str]:
        return self.generate_until(requests)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError("the scripted model only generates")
