"""Build instruction/eval data from ``OUT/shards`` into ``OUT/build`` with the builder's library entry point
(:func:`builders.build.build`, a WebDataset source labelled by the shards' ``json:class_id``)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from builders.build import SourceSettings, summarize
from builders.build import build as build_data
from builders.build_options import build_parser, settings_from_args
from builders.targeted.mined import Mined
from builders.targeted.options import BuildOptions
from builders.targeted.shards import shards_digest
from builders.targeted.state import built_from, record_build
from vlm_classdata.errors import UserError

#: builder options this flow sets itself (not allowed in ``extra_args``)
_OWN_BUILD_OPTIONS = ("--source", "--root", "--classes", "--label-field", "--split-name", "--out", "--outputs",
                      "--seed", "--overwrite")


def check_extra_args(extra_args: Sequence[str]) -> list[str]:
    """The further builder options as strings; one :class:`UserError` for an own or unknown one."""
    extra = [str(a) for a in extra_args]
    own = [a for a in extra if a.split("=", 1)[0] in _OWN_BUILD_OPTIONS]
    if own:
        raise UserError(f"{own[0].split('=', 1)[0]} is set by builders.targeted; it cannot be passed to the build")
    if extra:  # check them now, not after a long download
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                build_parser().parse_args(["--source", "webdataset", "--root", ".", *extra])
        except SystemExit:
            raise UserError(f"build options not understood by python -m builders.imagenet_qa: {' '.join(extra)}") from None
    return extra


def require_download(out: Path) -> None:
    """Raise unless OUT holds a finished download."""
    if not (out / "download.json").is_file() or not any((out / "shards").glob("*.tar")):
        raise UserError(f"{out} holds no finished download; run the download first")


def build(mined: Mined, out: Path, options: BuildOptions, progress: bool = True) -> dict:
    """Build from OUT's finished download (the caller holds OUT's run lock) and return the build's manifest.
    A build made from other shards, or ``options.rebuild``, is redone from scratch; otherwise an unfinished
    build resumes."""
    extra = check_extra_args(options.extra_args)
    require_download(out)
    shards = out / "shards"
    build_dir = out / "build"
    digest = shards_digest(shards)
    stale = build_dir.exists() and not built_from(out, digest)
    settings = settings_from_args(build_parser().parse_args(
        ["--outputs", options.outputs, "--seed", str(int(options.seed)), *extra]))
    # ClassVocabulary.load names the dataset after the JSON's "dataset" field (the file's stem when it has none)
    settings.source = SourceSettings(kind="webdataset", root=str(shards), classes=str(mined.path / "classes.json"),
                                     label_field="json:class_id", split_name="train")
    settings.out = build_dir
    settings.overwrite = options.rebuild or stale
    settings.run.show_progress = settings.run.show_progress and progress
    record_build(out, digest)
    try:
        manifest = build_data(settings)
    except UserError as exc:  # the builder's advice names its own option
        raise UserError(str(exc).replace("--overwrite", "--rebuild")) from None
    if progress:
        print(summarize(manifest, settings.out))
    return json.loads((build_dir / "manifest.json").read_text())
