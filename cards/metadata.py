"""Dataset-card metadata (the README's YAML front matter) worked out from a Hugging Face dataset folder.

Nothing here is typed by hand per dataset: split sizes and features come from the Parquet shards under
``folder/data/`` (their metadata and Arrow schema, no full read), the licence from the source dataset
(:func:`license_for`), the YAML form of the features from ``datasets`` itself. The result parses with
``huggingface_hub.DatasetCardData`` and ``datasets.utils.metadata.MetadataConfigs``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from builders.writers.hf_parquet import card_data
from vlm_classdata.errors import UserError

DEFAULT_CONFIG = "default"

#: the Hub's ``size_categories`` values with the exclusive upper bound of each (the last has none)
SIZE_CATEGORIES: tuple[tuple[str, int | None], ...] = (
    ("n<1K", 10 ** 3),
    ("1K<n<10K", 10 ** 4),
    ("10K<n<100K", 10 ** 5),
    ("100K<n<1M", 10 ** 6),
    ("1M<n<10M", 10 ** 7),
    ("10M<n<100M", 10 ** 8),
    ("100M<n<1B", 10 ** 9),
    ("1B<n<10B", 10 ** 10),
    ("10B<n<100B", 10 ** 11),
    ("100B<n<1T", 10 ** 12),
    ("n>1T", None),
)

#: licence ids the Hub accepts in ``license:`` (https://huggingface.co/docs/hub/repositories-licenses)
_HUB_LICENSE_IDS = """
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
llama3.3 llama4 gemma unknown other
"""
HUB_LICENSES = frozenset(_HUB_LICENSE_IDS.split())

_IMAGENET_NOTE = (
    "Derived from ImageNet, so the ImageNet terms of access apply: the data may be used only for "
    "non-commercial research and educational purposes; ImageNet does not own the copyright of the images "
    "(they belong to their owners). Users must accept the ImageNet terms before use; see "
    "https://image-net.org/download.php.")

#: the bundled class lists (vlm_classdata/data/classlists) and other known sources: the terms their data carries.
#: ``license``/``license_name``/``license_link`` go into the card's YAML, ``note`` into its licence section.
LICENSES: dict[str, dict[str, Any]] = {
    "imagenet1k": {
        "aliases": ("imagenet", "imagenet1000", "ilsvrc", "ilsvrc2012", "ilsvrcimagenet1k", "imagenet2012",
                    "imagenet21k", "imagenet22k", "imagenetval"),
        "license": "other",
        "license_name": "imagenet-terms-of-access",
        "license_link": "https://image-net.org/download.php",
        "note": _IMAGENET_NOTE,
    },
    "objectnet": {
        "aliases": ("objectnet10",),
        "license": "other",
        "license_name": "objectnet-license",
        "license_link": "https://objectnet.dev/",
        "note": ("Derived from ObjectNet, whose licence is Creative Commons Attribution 4.0 with two extra "
                 "clauses: ObjectNet may never be used to tune the parameters of any model (use it for "
                 "evaluation only, never for training), and individual ObjectNet images posted to the web "
                 "must keep their 1-pixel red border. Attribute ObjectNet (Barbu et al., 2019)."),
    },
    "cub200": {
        "aliases": ("cub", "cub2002011", "caltechucsdbirds2002011", "caltechucsdbirds200"),
        "license": "other",
        "license_name": "cub-200-2011-terms",
        "license_link": "https://www.vision.caltech.edu/datasets/cub_200_2011/",
        "note": ("Inherits the licence/terms of CUB-200-2011: the dataset states no licence, its images come "
                 "from Flickr and belong to their photographers; its authors ask users to cite Wah et al. "
                 "(2011). Use for research only unless the image owners agree otherwise."),
    },
    "food101": {
        "aliases": ("ethzfood101",),
        "license": "other",
        "license_name": "food-101-terms",
        "license_link": "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
        "note": ("Inherits the licence/terms of Food-101: its images come from Foodspotting and are not the "
                 "property of ETH Zurich; any use beyond scientific fair use must be negotiated with the "
                 "picture owners according to the Foodspotting terms of use."),
    },
    "flowers102": {
        "aliases": ("oxfordflowers102", "oxford102flowers", "oxfordflowers", "102flowers"),
        "license": "other",
        "license_name": "oxford-flowers-102-terms",
        "license_link": "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        "note": ("Inherits the licence/terms of Oxford Flowers-102: no licence is stated by its authors "
                 "(Nilsback and Zisserman, 2008); the images were collected from the web and belong to "
                 "their owners."),
    },
    "stanford_cars": {
        "aliases": ("stanfordcars", "cars196", "stanfordcars196"),
        "license": "other",
        "license_name": "stanford-cars-terms",
        "license_link": "https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
        "note": ("Inherits the licence/terms of Stanford Cars (Krause et al., 2013): no open licence is "
                 "stated; the images were collected from the web and belong to their owners."),
    },
    "caltech101": {
        "aliases": ("caltech101dataset",),
        "license": "cc-by-4.0",
        "license_name": None,
        "license_link": None,
        "note": ("Derived from Caltech 101, released on CaltechDATA under Creative Commons Attribution 4.0: "
                 "attribute Fei-Fei, Fergus and Perona (2004)."),
    },
    "web-images": {
        "aliases": ("web",),
        "license": "other",
        "license_name": "web-images-owners-rights",
        "license_link": None,
        "note": ("The images were downloaded from the web addresses listed in an image-text corpus (LAION-style "
                 "URL and caption metadata). Each image stays under its owner's copyright and licence; neither "
                 "the corpus nor this repository grants rights to it. Use for research only, respect the "
                 "corpus's own terms, and remove any image on its owner's request."),
    },
}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


_ALIASES: dict[str, str] = {}
for _name, _entry in LICENSES.items():
    for _alias in (_name, *_entry["aliases"]):
        _ALIASES[_key(_alias)] = _name


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "source"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` examples (``n<1K`` below 1,000, ``1K<n<10K`` from
    1,000 to 9,999, ..., ``n>1T`` from 10**12 on)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"size_category: expected a non-negative integer, got {n!r}")
    for name, upper in SIZE_CATEGORIES:
        if upper is None or n < upper:
            return name
    raise AssertionError("unreachable")


def known_source(dataset: str | None) -> str | None:
    """The :data:`LICENSES` key for a dataset name (bundled list name, alias or Hub id such as
    ``ILSVRC/imagenet-1k``), or None."""
    if not dataset:
        return None
    for candidate in (dataset, dataset.rsplit("/", 1)[-1]):
        name = _ALIASES.get(_key(candidate))
        if name:
            return name
    return None


def license_for(dataset: str | None) -> tuple[str, str | None, str | None]:
    """``(license id, license_name, note)`` that data built from ``dataset`` inherits.

    ImageNet-derived data is ``other`` / ``imagenet-terms-of-access``; the other bundled class lists get their
    dataset's terms (see :data:`LICENSES`); an unknown or missing source gives ``other`` with a note saying the
    data inherits that dataset's licence/terms. ``license_name`` is None only for a standard Hub licence.
    """
    name = known_source(dataset)
    if name is not None:
        entry = LICENSES[name]
        return entry["license"], entry["license_name"], entry["note"]
    if not dataset:
        return ("other", "source-dataset-terms",
                "The source dataset is not recorded: the data inherits the licence/terms of whatever dataset "
                "its images came from; check them before using or redistributing it.")
    return ("other", f"{_slug(dataset)}-terms",
            f"Inherits the licence/terms of {dataset}; check them before using or redistributing the data.")


def license_link_for(license_name: str | None) -> str | None:
    """The link of a known ``license_name`` from :data:`LICENSES`, else None."""
    for entry in LICENSES.values():
        if license_name and entry["license_name"] == license_name:
            return entry["license_link"]
    return None


_SPLIT_ORDER = ("train", "validation", "val", "dev", "test")


def _split_sort_key(split: str) -> tuple[int, str]:
    return (_SPLIT_ORDER.index(split) if split in _SPLIT_ORDER else len(_SPLIT_ORDER), split)


def shard_files(folder: str | Path) -> list[Path]:
    """The Parquet shards ``folder/data/*.parquet`` in name order; hidden files (writers' temporaries) are
    left out."""
    data_dir = Path(folder) / "data"
    return sorted(p for p in data_dir.glob("*.parquet") if p.is_file() and not p.name.startswith("."))


def data_info(folder: str | Path) -> dict:
    """Splits, sizes and features of the Parquet shards under ``folder/data/`` (metadata only, no full read).

    A shard's split is its file name before the first ``-`` (``data/train-00000-of-00002.parquet``); hidden
    files (writers' temporaries) are ignored. Returns ``{"features": datasets.Features, "splits": {split:
    {"num_examples", "num_bytes", "download_size", "files"}}, "configs": [{"config_name": "default",
    "data_files": [{"split", "path": "data/<split>-*"}]}], "num_examples", "download_size", "dataset_size"}``.
    ``num_bytes`` is the uncompressed Parquet data size (as the hf_parquet writer records it), ``download_size``
    the file bytes. Raises :class:`UserError` when there are no shards, a shard is unreadable or misnamed, or
    the shards disagree on their features.
    """
    from datasets import Features  # heavy: only the card writer needs it
    from datasets.naming import _split_re  # heavy: only the card writer needs it

    files = shard_files(folder)
    if not files:
        raise UserError(f"{folder}: no Parquet shards under data/ (expected data/<split>-*.parquet)")
    features = None
    first: Path | None = None
    splits: dict[str, dict[str, Any]] = {}
    for path in files:
        split = path.name.split("-", 1)[0]
        if "-" not in path.name or not re.fullmatch(_split_re, split):
            raise UserError(f"{path}: Parquet shard name must be <split>-*.parquet with a valid split name")
        try:
            meta = pq.read_metadata(path)
            file_features = Features.from_arrow_schema(meta.schema.to_arrow_schema())
        except (OSError, pa.ArrowException, ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
        if features is None:
            features, first = file_features, path
        elif file_features != features:
            raise UserError(f"{path.name}: its features differ from those of {first.name}; all shards must "
                            f"share one schema")
        info = splits.setdefault(split, {"num_examples": 0, "num_bytes": 0, "download_size": 0, "files": []})
        info["num_examples"] += meta.num_rows
        info["num_bytes"] += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        info["download_size"] += path.stat().st_size
        info["files"].append(path.relative_to(folder).as_posix())
    ordered = {s: splits[s] for s in sorted(splits, key=_split_sort_key)}
    return {
        "features": features,
        "splits": ordered,
        "configs": [{"config_name": DEFAULT_CONFIG,
                     "data_files": [{"split": s, "path": f"data/{s}-*"} for s in ordered]}],
        "num_examples": sum(s["num_examples"] for s in ordered.values()),
        "download_size": sum(s["download_size"] for s in ordered.values()),
        "dataset_size": sum(s["num_bytes"] for s in ordered.values()),
    }


def _str_list(value: str | Sequence[str], what: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"card_metadata: {what} must be non-empty strings, got {value!r}")
    return items


def card_metadata(folder: str | Path, *, pretty_name: str, license_id: str, license_name: str | None = None,
                  task_categories: str | Sequence[str], source_datasets: str | Sequence[str],
                  language: str | Sequence[str] = ("en",), tags: Sequence[str] = (), task_ids: Sequence[str] = (),
                  license_link: str | None = None, info: dict | None = None) -> dict:
    """The card's YAML metadata for the Hugging Face folder ``folder`` (see :func:`data_info`; ``info``: its
    result when already read).

    Keys, in order: pretty_name, license (+ license_name and license_link when ``other``; the link defaults to
    the known one for ``license_name``), language, task_categories, task_ids, size_categories (from the total
    number of examples), source_datasets, tags, configs and dataset_info (features in the Hub's YAML form,
    produced by ``datasets``; splits with num_bytes/num_examples; download_size; dataset_size). Empty
    ``task_ids``/``tags`` are left out. Raises ValueError on an unknown licence id or ``other`` without a name.
    """
    from huggingface_hub import DatasetCardData  # heavy: only the card writer needs it

    if license_id not in HUB_LICENSES:
        raise ValueError(f"card_metadata: {license_id!r} is not a Hugging Face Hub licence id")
    if not pretty_name or not isinstance(pretty_name, str):
        raise ValueError("card_metadata: pretty_name must be a non-empty string")
    if info is None:
        info = data_info(folder)
    card = card_data(info["features"], {s: (v["num_examples"], v["num_bytes"]) for s, v in info["splits"].items()},
                     DEFAULT_CONFIG, download_size=info["download_size"], dataset_size=info["dataset_size"])

    meta: dict[str, Any] = {"pretty_name": pretty_name, "license": license_id}
    if license_id == "other":
        if not license_name:
            raise ValueError("card_metadata: license 'other' needs a license_name")
        meta["license_name"] = license_name
        link = license_link or license_link_for(license_name)
        if link:
            meta["license_link"] = link
    meta["language"] = _str_list(language, "language")
    meta["task_categories"] = _str_list(task_categories, "task_categories")
    if task_ids:
        meta["task_ids"] = _str_list(task_ids, "task_ids")
    meta["size_categories"] = [size_category(info["num_examples"])]
    meta["source_datasets"] = _str_list(source_datasets, "source_datasets")
    if tags:
        meta["tags"] = _str_list(tags, "tags")
    meta["configs"] = card["configs"]
    meta["dataset_info"] = card["dataset_info"]
    # plain Python types only, so that yaml.safe_dump and DatasetCardData both take it
    meta = yaml.safe_load(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    DatasetCardData(**meta)
    return meta


def render_front_matter(meta: dict) -> str:
    """``---\\n<yaml>---\\n``: the metadata as the README's YAML front matter (key order kept)."""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"
