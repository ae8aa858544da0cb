"""Write a build's dataset card: YAML metadata (:mod:`cards.metadata`) + Markdown body (:mod:`cards.render`).

The card replaces the minimal ``README.md`` the hf writer left in the publishable folder. The same inputs give
the same bytes (no timestamps; plots without a ``Software`` tag).
"""

from __future__ import annotations

from pathlib import Path

from cards.collect import collect
from cards.facts import CardFacts
from cards.metadata import HUB_LICENSES, card_metadata, known_source, license_for, render_front_matter
from cards.render import default_pretty_name, render_body
from vlm_classdata.atomic import remove_leftovers, write_text_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.secrets import redact
from vlm_classdata.stages import lock_out, paths_overlap

#: the Hub's task_categories for each build task
TASK_CATEGORIES = {"instruct": "image-text-to-text", "open": "visual-question-answering",
                   "mcq": "visual-question-answering", "qa": "visual-question-answering"}
#: Hub ids of the bundled class lists' datasets, for ``source_datasets``
HUB_SOURCES = {"imagenet1k": "ILSVRC/imagenet-1k", "food101": "ethz/food101",
               "flowers102": "nelorth/oxford-flowers", "cub200": "cub200", "stanford_cars": "stanford_cars",
               "caltech101": "caltech101", "objectnet": "objectnet"}


def task_categories(facts: CardFacts) -> list[str]:
    """The Hub task categories: the published rows' task (every build task when unknown) + image-classification."""
    tasks = [facts.hf_task] if facts.hf_task else sorted(facts.tasks)
    out = []
    for task in tasks:
        cat = TASK_CATEGORIES.get(task or "")
        if cat and cat not in out:
            out.append(cat)
    if facts.kind != "imagewikiqa" or not out:
        out.append("image-classification")
    return out


def source_datasets(facts: CardFacts) -> list[str]:
    """``source_datasets``: the Hub id of the source (a Hub root for hf sources), else its class list name."""
    source = facts.source
    if source.kind == "hf" and source.root and not Path(source.root).exists():
        return [source.root]
    if facts.targeted:  # images from the mined corpus; the class list only names them
        files = facts.targeted.mine.corpus_files
        names = [str(f.get("name") or f.get("file")) if isinstance(f, dict) else str(f) for f in files]
        return sorted(set(names)) or ["original"]
    name = known_source(facts.dataset) or facts.dataset
    return [HUB_SOURCES.get(str(name), str(name or "original"))]


def tags(facts: CardFacts) -> list[str]:
    """The card's tags: the project, the kind of data, filtered and web-mined when they apply."""
    out = ["vlm-classdata", "vision-language"]
    out += ["imagewikiqa", "multiple-choice", "knowledge"] if facts.kind == "imagewikiqa" else (
        ["multiple-choice"] if facts.hf_task == "mcq" else ["instruction-tuning"])
    if facts.kind == "filtered":
        out.append("filtered")
    if facts.targeted:
        out.append("web-mined")
    return out


def _licence_override(wanted: str | None, source: str | None) -> tuple[str, str | None] | None:
    """The publisher's ``(license id, license_name)`` when ``wanted`` differs from the licence of ``source``
    (:func:`cards.metadata.license_for`), else None; ``other`` keeps the source's licence name.
    UserError for an id the Hub does not know."""
    if wanted is None:
        return None
    if wanted not in HUB_LICENSES:
        raise UserError(f"--license {wanted!r} is not a Hugging Face Hub licence id (e.g. cc-by-4.0, mit, other)")
    source_id, source_name, _ = license_for(source)
    if wanted == source_id:
        return None
    return wanted, ((source_name or "source-dataset-terms") if wanted == "other" else None)


def write_card(build_dir: str | Path, repo_folder: str | Path | None = None, corpora: str | None = None,
               pretty_name: str | None = None, license: str | None = None) -> Path:  # noqa: A002 - CLI name
    """Write ``repo_folder/README.md`` (default ``BUILD/hf``) for the build in ``build_dir`` and the assets it
    links to; return the README's path. The card's counts describe ``repo_folder``'s Parquet shards.

    ``corpora``: a ``corpora_stats count`` folder for the class-frequency section; ``license``: a Hub licence id
    replacing the source dataset's (:func:`cards.metadata.license_for`)."""
    build = Path(build_dir).expanduser()
    if not build.is_dir():
        raise UserError(f"build folder {str(build_dir)!r} not found")
    with lock_out(build):  # a live run writing this build is refused; none can start while the card is written
        return _write_card(build, repo_folder, corpora, pretty_name, license)


def _write_card(build_dir: Path, repo_folder: str | Path | None, corpora: str | None, pretty_name: str | None,
                license: str | None) -> Path:  # noqa: A002 - CLI name
    """:func:`write_card` under the build's run lock."""
    facts = collect(build_dir, corpora, hf_dir=repo_folder)
    repo = Path(facts.hf_dir)
    if paths_overlap(repo, build_dir) and repo.resolve() != build_dir.resolve():
        remove_leftovers(repo)  # what a killed card writer left (the lock says no writer is alive)
    override = _licence_override(license, facts.licence_source)
    lic_id, lic_name = override or license_for(facts.licence_source)[:2]
    name = pretty_name or default_pretty_name(facts)
    meta = card_metadata(repo, pretty_name=name, license_id=lic_id, license_name=lic_name,
                         task_categories=task_categories(facts), source_datasets=source_datasets(facts),
                         tags=tags(facts), info=facts.data_info)
    body = render_body(facts, repo, pretty_name=name, licence=override, info=facts.data_info)
    path = repo / "README.md"
    # a key or password in a recorded command, config or URL never reaches the published card
    write_text_atomic(path, redact(render_front_matter(meta) + "\n" + body))
    return path
