"""img2dataset, called in-process: quietly, without network checks, its output optionally sent to a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from builders.targeted.mined import Mined
from vlm_classdata.extras import require

SAVED_COLUMNS = ["class_id", "class_name", "matched_form"]
ENCODE_FORMAT = "jpg"


@contextlib.contextmanager
def _output_to(log_file: Path | None) -> Iterator[None]:
    """Send this process's and its children's stdout/stderr to ``log_file`` (None: leave them alone)."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        with open(log_file, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def call_img2dataset(mined: Mined, shards: Path, log_file: Path | None, **opts) -> None:
    """Run ``img2dataset.download`` (quietly, without network checks) and restore the SIGINT handler it sets."""
    # albumentations (imported by img2dataset) asks the package registry for a newer version unless told not to;
    # the spawned workers inherit the environment
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_MODE", "disabled")
    require("targeted", "the targeted image download")
    main_thread = threading.current_thread() is threading.main_thread()
    old_handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with _output_to(log_file):
            import img2dataset  # heavy, optional (the targeted extra): only the download needs it

            img2dataset.download(
                url_list=str(mined.urls_file), input_format="parquet", url_col="url", caption_col="caption",
                save_additional_columns=list(SAVED_COLUMNS), output_format="webdataset",
                output_folder=str(shards), incremental_mode="incremental", enable_wandb=False,
                distributor="multiprocessing", compute_hash="sha256", encode_format=ENCODE_FORMAT, **opts)
    finally:
        if main_thread and old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
