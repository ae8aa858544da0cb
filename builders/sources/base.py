"""What every source provides: a deterministic scan of cheap references, and a batched read of bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from builders.records import SampleRef
from vlm_classdata.vocabulary import ClassVocabulary

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class Source(ABC):
    """A classification dataset. Sources must be picklable (they are sent to worker processes)."""

    #: short name used in manifests, e.g. "imagenet", "imagefolder"
    kind: str = "source"

    def __init__(self, vocabulary: ClassVocabulary) -> None:
        self.vocabulary = vocabulary

    @abstractmethod
    def splits(self) -> list[str]:
        """Split names present in this source, e.g. ["train", "val"]."""

    @abstractmethod
    def scan(self, split: str) -> Iterator[SampleRef]:
        """All inputs of a split in a deterministic order, without reading image bytes.

        Unusable inputs known at scan time are yielded with ``skip`` set (never dropped silently).
        """

    @abstractmethod
    def read(self, refs: Sequence[SampleRef]) -> Iterator[tuple[SampleRef, bytes | None, str | None]]:
        """Yield ``(ref, bytes, None)`` or ``(ref, None, reason)`` for each ref, in the given order."""

    def image_path(self, ref: SampleRef) -> str | None:
        """Path of the image relative to :meth:`image_root`, for formats that reference files; else None."""
        return None

    def image_root(self) -> str | None:
        """Folder that :meth:`image_path` is relative to, if the source is file-backed."""
        return None

    def input_paths(self) -> list[str]:
        """Local files and folders this source reads that an output folder may not overlap: a folder it
        scans (an output inside it would be read as data) or the files it lists."""
        root = self.describe().get("root")
        return [str(p) for p in (self.image_root(), root) if p]

    def describe(self) -> dict:
        """JSON-able description for the build manifest (kind, root, options)."""
        return {"kind": self.kind, "dataset": self.vocabulary.dataset, "num_classes": len(self.vocabulary)}
