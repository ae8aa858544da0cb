"""The Markdown body of a dataset card, rendered from :class:`cards.collect.CardFacts`, and its plots.

:func:`render_body` returns the sections (summary, structure with one real example, creation, filtering,
class coverage, quality report for QA sets, bias/risks/limitations, licence, citation) and writes the files
the body links to under ``repo_folder/assets/``: ``example.<ext>`` (the first row's image bytes, as stored),
``class_counts.png``, ``letters.png`` (QA sets) and ``class_frequency.png`` (with corpora counts). Plots are
drawn with matplotlib's Agg canvas at a fixed size and dpi, without a ``Software`` tag, so the same facts
give the same bytes. Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cards.collect import CardFacts, CorpusCounts, split_files
from cards.metadata import data_info
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.images import EXT_BY_FORMAT

PAPER_ZHANG = "https://arxiv.org/abs/2405.18415"
PAPER_LIU = "https://arxiv.org/abs/2412.16418"
ASSET_NAMES = ("class_counts.png", "letters.png", "class_frequency.png")
FIGSIZE = (7.0, 3.2)
DPI = 100
MAX_LISTED = 30  # classes listed one by one in tables and bar charts

BIBTEX_PAPERS = """@article{zhang2024vlmclassifier,
  title   = {Why are Visually-Grounded Language Models Bad at Image Classification?},
  author  = {Zhang, Yuhui and Unell, Alyssa and Wang, Xiaohan and Ghosh, Dhruba and Su, Yuchang and
             Schmidt, Ludwig and Yeung-Levy, Serena},
  journal = {arXiv preprint arXiv:2405.18415},
  year    = {2024}
}

@article{liu2024revisiting,
  title   = {Revisiting MLLMs: An In-Depth Analysis of Image Classification Abilities},
  author  = {Liu, Huan and Xiao, Lingyu and Liu, Jiangjiang and Li, Xiaofan and Feng, Ze and Yang, Sen and
             Wang, Jingdong},
  journal = {arXiv preprint arXiv:2412.16418},
  year    = {2024}
}"""

BIBTEX_SOURCES = {
    "imagenet1k": """@inproceedings{deng2009imagenet,
  title     = {ImageNet: A Large-Scale Hierarchical Image Database},
  author    = {Deng, Jia and Dong, Wei and Socher, Richard and Li, Li-Jia and Li, Kai and Fei-Fei, Li},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {248--255},
  year      = {2009}
}

@article{russakovsky2015imagenet,
  title   = {ImageNet Large Scale Visual Recognition Challenge},
  author  = {Russakovsky, Olga and Deng, Jia and Su, Hao and Krause, Jonathan and Satheesh, Sanjeev and
             Ma, Sean and Huang, Zhiheng and Karpathy, Andrej and Khosla, Aditya and Bernstein, Michael and
             Berg, Alexander C. and Fei-Fei, Li},
  journal = {International Journal of Computer Vision (IJCV)},
  volume  = {115},
  number  = {3},
  pages   = {211--252},
  year    = {2015}
}""",
    "flowers102": """@inproceedings{nilsback2008flowers,
  title     = {Automated Flower Classification over a Large Number of Classes},
  author    = {Nilsback, Maria-Elena and Zisserman, Andrew},
  booktitle = {Indian Conference on Computer Vision, Graphics and Image Processing (ICVGIP)},
  year      = {2008}
}""",
    "stanford_cars": """@inproceedings{krause2013cars,
  title     = {3D Object Representations for Fine-Grained Categorization},
  author    = {Krause, Jonathan and Stark, Michael and Deng, Jia and Fei-Fei, Li},
  booktitle = {4th International IEEE Workshop on 3D Representation and Recognition (3dRR-13)},
  year      = {2013}
}""",
    "caltech101": """@inproceedings{feifei2004caltech101,
  title     = {Learning Generative Visual Models from Few Training Examples: An Incremental Bayesian
               Approach Tested on 101 Object Categories},
  author    = {Fei-Fei, Li and Fergus, Rob and Perona, Pietro},
  booktitle = {CVPR Workshop on Generative-Model Based Vision},
  year      = {2004}
}""",
    "cub200": """@techreport{wah2011cub,
  title       = {The Caltech-UCSD Birds-200-2011 Dataset},
  author      = {Wah, Catherine and Branson, Steve and Welinder, Peter and Perona, Pietro and Belongie, Serge},
  institution = {California Institute of Technology},
  number      = {CNS-TR-2011-001},
  year        = {2011}
}""",
    "food101": """@inproceedings{bossard2014food,
  title     = {Food-101 -- Mining Discriminative Components with Random Forests},
  author    = {Bossard, Lukas and Guillaumin, Matthieu and Van Gool, Luc},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2014}
}""",
    "objectnet": """@inproceedings{barbu2019objectnet,
  title     = {ObjectNet: A Large-Scale Bias-Controlled Dataset for Pushing the Limits of Object
               Recognition Models},
  author    = {Barbu, Andrei and Mayo, David and Alverio, Julian and Luo, William and Wang, Christopher and
               Gutfreund, Dan and Tenenbaum, Josh and Katz, Boris},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019}
}""",
}

BIBTEX_WORDNET = """@article{miller1995wordnet,
  title   = {WordNet: A Lexical Database for English},
  author  = {Miller, George A.},
  journal = {Communications of the ACM},
  volume  = {38},
  number  = {11},
  pages   = {39--41},
  year    = {1995}
}"""

PASS_ABOUT = {
    "label_check": "the open question with the image; correct when the reply names the class",
    "mcq": "the multiple-choice item with the image",
    "blind": "the multiple-choice item without the image (correct = answerable blind)",
    "rank": "rank of the true class among all class names by answer log-likelihood",
}


# ----- small helpers ---------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _num(n: float) -> str:
    return f"{n:,}" if isinstance(n, int) or float(n).is_integer() else f"{n:,.1f}"


def _plural(n: int, word: str) -> str:
    return f"{_num(n)} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _code(text: str, lang: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [fence + lang, text, fence]


def _name(facts: CardFacts, class_id: str) -> str:
    return facts.class_names.get(class_id, class_id)


def default_pretty_name(facts: CardFacts) -> str:
    """A name for the card when none is given, from the build kind and source dataset."""
    if facts.kind == "imagewikiqa":
        return f"ImageWikiQA-style knowledge benchmark ({facts.dataset_name})"
    what = "multiple-choice questions" if facts.hf_task == "mcq" else "instruction data"
    name = f"{facts.dataset_name} classification as VLM {what}"
    if facts.targeted:
        name = f"Web images of under-exposed {facts.dataset_name} classes as VLM {what}"
    return f"{name} (filtered)" if facts.kind == "filtered" else name


# ----- plots -----------------------------------------------------------------------------------------------
def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _bars_or_hist(ax, labels: list[str], values: list[float], xlabel: str, ylabel: str, log: bool = False) -> None:
    if len(values) <= MAX_LISTED:
        bars = ax.barh(range(len(values)), values, color="#4C72B0")
        ax.bar_label(bars, labels=[_num(v) for v in values], fontsize=7, padding=2)
        ax.set_yticks(range(len(values)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.set_xlim(0, max([*values, 1]) * 1.12)
    else:
        data = [math.log10(v + 1) for v in values] if log else values
        ax.hist(data, bins=30, color="#4C72B0")
        ax.set_xlabel(f"log10({xlabel} + 1)" if log else xlabel)
        ax.set_ylabel("classes")


def plot_class_counts(counts: dict[str, int], names: dict[str, str]) -> bytes:
    """PNG: rows per class (a bar per class up to 30 classes, else a histogram of rows per class)."""
    fig = _figure()
    ax = fig.add_subplot()
    ids = sorted(counts, key=lambda c: (-counts[c], c))
    _bars_or_hist(ax, [names.get(c, c) for c in ids], [counts[c] for c in ids], "rows per class", "rows")
    ax.set_title(f"Rows per class ({len(counts)} classes)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def plot_letters(letters: dict[str, int]) -> bytes:
    """PNG: how often each letter is the correct answer."""
    fig = _figure()
    ax = fig.add_subplot()
    keys = list(letters)
    ax.bar(keys, [letters[k] for k in keys], color="#55A868")
    ax.set_xlabel("correct letter")
    ax.set_ylabel("questions")
    ax.set_title("Correct-answer letters", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def plot_class_frequency(corpus: str, rows: list[dict], names: dict[str, str]) -> bytes:
    """PNG: mentions per class in one corpus (bars up to 30 classes, else a histogram of log mentions)."""
    fig = _figure()
    ax = fig.add_subplot()
    ordered = sorted(rows, key=lambda r: (-r["mentions"], r["class_id"]))
    _bars_or_hist(ax, [names.get(r["class_id"], r["class_name"]) for r in ordered],
                  [r["mentions"] for r in ordered], "mentions", "mentions", log=True)
    ax.set_title(f"Class-name mentions in {corpus} ({len(rows)} classes)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


# ----- the example row -------------------------------------------------------------------------------------
def _feature_type(feature: Any) -> str:
    from datasets import ClassLabel, Image, LargeList, List, Sequence, Value

    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, Image):
        return "image"
    if isinstance(feature, ClassLabel):
        shown = ", ".join(feature.names[:3]) + (", …" if feature.num_classes > 3 else "")
        return f"class label ({feature.num_classes} names: {shown})"
    if isinstance(feature, (List, LargeList, Sequence)):
        return f"list of {_feature_type(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__


def _image_ext(data: bytes) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except (UnidentifiedImageError, OSError, ValueError):
        return "bin"
    return EXT_BY_FORMAT.get(fmt) or fmt.lower() or "bin"


def _structure(facts: CardFacts, repo: Path, assets_dir: str, info: dict) -> tuple[list[str], list[str]]:
    """The structure section and the asset file names it wrote (``info``: :func:`cards.metadata.data_info`
    of ``repo``)."""
    import pyarrow.parquet as pq

    files = split_files(repo, info, list(facts.split_counts))
    first = files[next(iter(files))][0]
    pf = pq.ParquetFile(first)
    lines = ["## Dataset structure", "",
             "Load it with `datasets.load_dataset(\"<this folder or repo id>\")`. Features:", ""]
    lines += _table(["feature", "type"], [(f"`{k}`", _feature_type(v)) for k, v in info["features"].items()])
    lines += ["", "Splits:", ""]
    lines += _table(["split", "rows", "files"],
                    [(s, _num(info["splits"][s]["num_examples"]), len(files[s])) for s in files])
    batch = next(pf.iter_batches(batch_size=1), None)
    written = []
    if batch is None or batch.num_rows == 0:
        lines += ["", "The first split's first file holds no rows, so no example is shown."]
        return lines, written
    row = batch.to_pylist()[0]
    image = row.pop("image", None)
    lines += ["", f"One example: the first row of `{first.relative_to(repo).as_posix()}`"
                  + (f" (class `{row['class_id']}`, {_name(facts, row['class_id'])})"
                     if isinstance(row.get("class_id"), str) else "") + ":", ""]
    if isinstance(image, dict) and image.get("bytes"):
        name = f"example.{_image_ext(image['bytes'])}"
        write_bytes_atomic(repo / assets_dir / name, image["bytes"])
        written.append(name)
        lines += [f"![example]({assets_dir}/{name})", ""]
    lines += _code(json.dumps(row, indent=2, ensure_ascii=False, default=str), "json")
    return lines, written


# ----- sections --------------------------------------------------------------------------------------------
def _split_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{s}: {_num(n)}" for s, n in counts.items())


def _summary(facts: CardFacts, pretty_name: str) -> list[str]:
    classes = len(facts.class_counts) or facts.num_classes
    rows = f"{_num(facts.total_rows)} rows ({_split_text(facts.split_counts)})"
    src = facts.source
    lines = [f"# {pretty_name}", "", "## Summary", ""]
    if facts.kind == "imagewikiqa":
        q = facts.quality or {}
        lines += [
            f"An ImageWikiQA-style multiple-choice knowledge benchmark: each row shows an image of an object "
            f"from {facts.dataset_name} and asks a question about that object without naming it, so a model "
            f"must recognise the object and know something about it. {_num(facts.questions or 0)} questions "
            f"about {_plural(facts.num_classes, 'class')}, paired with images into {rows}"
            + (f"; {q.get('distinct_questions')} distinct questions" if q.get("distinct_questions") else "") + ".",
            "",
            f"Questions were generated by the `{facts.config.get('generator')}` generator "
            f"({'from WordNet relations' if facts.config.get('generator') == 'wordnet' else 'by a language model from encyclopedia articles'}), "
            f"filtered by rules{' and a text-only verifier model' if facts.config.get('verifier') else ''}, "
            f"debiased (option lengths"
            + (", questions that learned blind solvers answer from the text alone"
               if facts.config.get("adversarial", True) else "")
            + ", letter balance) and paired with images of their class from "
            f"`{src.get('root')}` (split `{src.get('split')}`).",
            "",
            f"ImageWikiQA was introduced by [Zhang et al., 2024]({PAPER_ZHANG}) (*Why are Visually-Grounded "
            f"Language Models Bad at Image Classification?*) to test whether classification ability transfers "
            f"to knowledge about the recognised object; this set follows its format and adds the blind "
            f"baselines used to check that questions cannot be answered without the image.",
        ]
    else:
        task = facts.hf_task
        what = ("a K-way multiple-choice question about what the image shows, answered with a letter"
                if task == "mcq" else
                "an open question about what the image shows, answered with the class name" if task == "open"
                else "a question about what the image shows and the class name as the assistant's answer")
        lines += [
            ("Web images labelled with " + facts.dataset_name + " classes" if facts.targeted else
             "Image-classification data from " + facts.dataset_name)
            + " converted into chat data for vision-language "
            f"models (VLMs) by vlm-classdata: each row pairs one image with `messages`, {what}. "
            f"{rows} over {_plural(classes, 'class')}"
            + (f" of the {facts.num_classes}-class vocabulary" if facts.num_classes > classes else "")
            + f", read by the `{src.get('kind')}` source reader.",
            "",
            f"The conversion follows [Zhang et al., 2024]({PAPER_ZHANG}) (*Why are Visually-Grounded Language "
            f"Models Bad at Image Classification?*), which found that VLMs lag CLIP on classification mainly for "
            f"lack of classification data and trained on classification datasets turned into instructions; its "
            f"multiple-choice evaluation format follows [Liu et al., 2024]({PAPER_LIU}) (*Revisiting MLLMs: An "
            f"In-Depth Analysis of Image Classification Abilities*).",
        ]
        if facts.targeted:
            mine = facts.targeted.get("mine") or {}
            dl = (facts.targeted.get("download") or {}).get("totals") or {}
            rule = (mine.get("rule") or {}).get("spec") or (mine.get("rule") or {}).get("kind")
            lines += ["", f"The images are not {facts.dataset_name}'s: they were mined from the captions of a "
                          f"web image-text corpus for {_plural(len(mine.get('classes') or []), 'class')} chosen as "
                          f"under-exposed (rule `{rule}` on class-name frequency counts), downloaded with "
                          f"img2dataset ({_num(dl.get('downloaded', 0))} of {_num(dl.get('mined', 0))} URLs) and "
                          f"labelled with the class their caption names (see Targeted collection)."]
        if facts.filtered:
            f = facts.filtered
            lines += ["", f"This is a filtered copy: {_num(f.get('kept', 0))} of {_num(f.get('input', 0))} samples "
                          f"were kept by the verification rules {', '.join(f'`{r}`' for r in f.get('rules_text', []))} "
                          f"(see Filtering)."]
    others = [f"`{name}` ({info['about']})" for name, info in facts.outputs.items() if name != "hf"]
    if others:
        lines += ["", "The same build also wrote " + "; ".join(others) + " (not part of this repository)."]
    return lines


def _creation(facts: CardFacts) -> list[str]:
    src = facts.source
    lines = ["## Creation", "", "### Source", ""]
    rows = [("dataset", facts.dataset_name + (f" (`{facts.dataset}`)" if facts.dataset else "")),
            ("source kind", f"`{src.get('kind')}`"), ("root", f"`{src.get('root')}`")]
    if src.get("label_source"):
        rows.append(("labels from", ", ".join(f"{k}: {v}" for k, v in src["label_source"].items())))
    if src.get("split"):
        rows.append(("image split", src["split"]))
    rows.append(("class vocabulary", f"{facts.num_classes} classes"))
    lines += _table(["", "value"], rows)
    if facts.renamed:
        lines += ["", "Class names changed so that every class has a unique name:", ""]
        lines += _table(["class", "from", "to", "why"],
                        [(c, r.get("from"), r.get("to"), r.get("why", "")) for c, r in sorted(facts.renamed.items())])
    if facts.kind == "imagewikiqa":
        c = facts.config
        lines += ["", "### Questions", ""]
        keys = ("generator", "per_class", "articles", "fallback_articles", "llm", "llm_model", "verifier",
                "verifier_model", "verify_permutations", "max_longest", "images_per_question", "eval_permutations",
                "split")
        lines += _table(["setting", "value"], [(k, c.get(k)) for k in keys if k in c])
    else:
        lines += ["", "### Prompts", ""]
        if facts.prompts:
            lines += [f"Templates from {', '.join(f'`{s}`' for s in facts.prompt_sources)}. With paraphrasing on, "
                      f"each sample's template is drawn with a per-sample seeded RNG; off, every sample uses the "
                      f"first (canonical) template.", ""]
        for ps in facts.prompts:
            mode = (f"paraphrased: one of {len(ps.templates)} templates per sample" if ps.paraphrase
                    else "canonical template only")
            lines += [f"Task `{ps.task}`, template set `{ps.set_name}` ({mode}):", ""]
            lines += _table(["id", "text"], [(f"`{tid}`", text) for tid, text in ps.templates])
            lines.append("")
        for name, info in sorted(facts.tasks.items()):
            extra = {k: v for k, v in info.items() if k not in ("templates", "task", "seed")}
            lines.append(f"- `{name}`: " + ", ".join(f"{k} = {v}" for k, v in extra.items()))
    lines += ["", "### Reproducing", ""]
    lines.append(f"Seed: `{facts.seed}`. Tool versions:")
    lines.append("")
    versions = (facts.tool or {}).get("versions") or {}
    lines += _table(["package", "version"], sorted(versions.items())) if versions else ["(not recorded)"]
    lines += ["", "Exact command:" if facts.command else "The command line was not recorded.", ""]
    if facts.command:
        lines += _code(facts.command, "bash")
    if facts.filtered:
        rules = " ".join(f"--rule {r!r}" if " " in r else f"--rule {r}" for r in facts.filtered.get("rules_text", []))
        lines += ["", "then filtered (the rules as recorded in `filter_report.json`):", ""]
        lines += _code(f"python -m builders.verify filter --build {facts.filtered.get('from')} {rules} "
                       f"--out {facts.build_dir}", "bash")
    for note in facts.notes:
        lines += ["", f"Note: {note}."]
    return lines


def _targeted(facts: CardFacts) -> list[str]:
    """How the classes were chosen, the mining rule, and rows mined / downloaded / kept per class."""
    t = facts.targeted
    if not t:
        return []
    mine, dl, kept = t.get("mine") or {}, t.get("download") or {}, t.get("kept") or {}
    rule, counts = mine.get("rule") or {}, mine.get("counts") or {}
    lines = ["## Targeted collection", "",
             "The classes were chosen because they are rarely named in the text a VLM learns from, and their "
             "images were collected from a web corpus (`python -m corpora_stats mine`, then "
             "`python -m builders.targeted`).", ""]
    files = mine.get("corpus_files") or []
    rows = [("selection rule", f"`{rule.get('spec') or rule.get('kind')}` on `{counts.get('column') or rule.get('column')}`"
             f" of the counts of `{counts.get('corpus')}`"),
            ("class-name forms", f"{mine.get('forms')} (the lexicon and whole-word matching of corpora_stats)"),
            ("mined from", ", ".join(f"`{f.get('name') or f.get('file')}` ({_num(f.get('rows', 0))} rows)"
                                     if isinstance(f, dict) else f"`{f}`" for f in files) or "not recorded"),
            ("rows scanned", _num(mine.get("rows_scanned", 0))),
            ("rows skipped", ", ".join(f"{k} {v}" for k, v in (mine.get("skipped") or {}).items() if v) or "none"),
            ("captions naming several chosen classes (left out)", _num(mine.get("multi_class_rows", 0))),
            ("duplicate URLs (kept once)", _num(mine.get("duplicate_urls", 0))),
            ("URLs per class at most", f"{_num(mine.get('per_class', 0))}, chosen by a hash of the URL with seed "
                                       f"{mine.get('seed')}"),
            ("download", f"img2dataset, {dl.get('image_size')} px, resize `{dl.get('resize_mode')}`")]
    lines += _table(["", "value"], rows)
    lines += ["", "Per class (mined = downloaded + failed; kept = rows in this data):", ""]
    doc = {c.get("class_id"): c for c in mine.get("classes") or [] if isinstance(c, dict)}
    table = []
    for cid, info in (dl.get("classes") or {}).items():
        failed = info.get("failed") or {}
        table.append((_name(facts, cid), _num(doc.get(cid, {}).get("doc_freq", 0)),
                      _num(doc.get(cid, {}).get("matched_rows", 0)), _num(info.get("mined", 0)),
                      _num(info.get("downloaded", 0)), _num(sum(failed.values())),
                      ", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "none", _num(kept.get(cid, 0))))
    lines += _table(["class", "doc freq", "matched rows", "mined", "downloaded", "failed", "failure reasons", "kept"],
                    table)
    return lines


def _filtering(facts: CardFacts) -> list[str]:
    lines = ["## Filtering", ""]
    if facts.kind == "imagewikiqa":
        rej = facts.rejections
        if rej:
            lines += [f"{_num(sum(rej.values()))} candidate questions were rejected during the build:", ""]
            lines += _table(["reason", "questions"], sorted(rej.items(), key=lambda kv: (-kv[1], kv[0])))
        else:
            lines.append("No candidate question was rejected during the build.")
        lines.append("")
        if facts.verification:
            lines += [f"Text-only verification by `{facts.config.get('verifier_model') or facts.config.get('verifier')}` "
                      f"(kept questions the model answers with the class name given and gets wrong without it):", ""]
            lines += _table(["", "value"], [(k, v) for k, v in sorted(facts.verification.items())
                                            if isinstance(v, (int, float, str, bool)) or v is None])
        else:
            lines.append("The questions were not checked by a verifier model (no `--verifier` was given), only by "
                         "the rules and the debiasing step.")
        return lines + ["", *_key_audit(facts)]
    # skipped inputs
    rows = [(s, _num(i.get("scanned") or 0), _num(i.get("written") or 0), _num(i.get("skipped") or 0),
             ", ".join(f"{k} {v}" for k, v in (i.get("skip_reasons") or {}).items()) or "none",
             ", ".join(f"{k} {v}" for k, v in (i.get("converted") or {}).items()) or "none")
            for s, i in facts.build_splits.items()]
    if rows:
        lines += ["Inputs the build could not use were skipped (each with a reason); images in modes other than "
                  "RGB were converted:", ""]
        lines += _table(["split", "scanned", "written", "skipped", "skip reasons", "converted"], rows)
        lines.append("")
    if facts.verify:
        lines += ["Verification passes run over the build (`python -m builders.verify run`):", ""]
        lines += _table(["pass", "what it asks", "model", "items", "answered", "correct", "accuracy", "errors"],
                        [(s["pass"], PASS_ABOUT.get(s["pass"], ""), s["model"], _num(s.get("items", 0)),
                          _num(s.get("ok", 0)), _num(s.get("correct", 0)), _pct(s.get("accuracy")),
                          ", ".join(f"{k} {v}" for k, v in (s.get("errors") or {}).items()) or "none")
                         for s in facts.verify])
        lines.append("")
    f = facts.filtered
    if f:
        lines += [f"Filtering kept **{_num(f.get('kept', 0))} of {_num(f.get('input', 0))}** samples "
                  f"({_num(f.get('input', 0) - f.get('kept', 0))} dropped). Rules apply in order; \"dropped\" counts "
                  f"what a rule removed after the earlier ones, \"alone\" what it would remove by itself:", ""]
        rows, alive = [], int(f.get("input", 0))
        for r in f.get("rules", []):
            alive -= int(r.get("dropped", 0))
            rows.append((f"`{r.get('rule')}`", _num(r.get("dropped", 0)), _num(alive),
                         _num(r.get("dropped_alone", 0)), ", ".join(r.get("models", []))))
        lines += _table(["rule", "dropped", "kept after", "dropped alone", "models"], rows)
        hf_files = {k: v for k, v in (f.get("files") or {}).items() if k.startswith("hf/")}
        if hf_files:
            lines += ["", "Rows per file of this repository before and after filtering:", ""]
            lines += _table(["file", "rows", "kept"], [(k[3:], _num(v.get("rows", 0)), _num(v.get("kept", 0)))
                                                       for k, v in sorted(hf_files.items())])
    elif not facts.verify:
        lines.append("No model verification or filtering was applied (`python -m builders.verify`): every usable "
                     "image of the source is in the data.")
    return lines


def _key_audit(facts: CardFacts) -> list[str]:
    """The key audit of an ImageWikiQA build: the automatic WordNet key check, the review sample, a human's
    result (``audit/review.json``)."""
    lines = ["### Key audit", ""]
    key, audit, review = facts.key_check, facts.audit, facts.review
    if key is None:
        lines.append("The build did not record an automatic key check (built before it existed).")
    else:
        sample = (f"{_plural(int(audit.get('n') or 0), 'question')} exported for human review in audit/ "
                  f"(seed {audit.get('seed')})" if audit else
                  "no questions exported for human review (the build was run without `--audit N`)")
        lines.append(f"Automatic key check: {_plural(int(key.get('problems') or 0), 'problem')}; {sample}. "
                     "The check (`imagewikiqa.audit.key_check`) flags every wrong option that WordNet says is, or "
                     "may be, true of the question's class.")
        examples = key.get("examples") or []
        if examples:
            lines += ["", "First problems found:", ""]
            lines += _table(["question", "class", "option", "evidence"],
                            [(e.get("qid"), e.get("class_name"), e.get("option"), e.get("evidence")) for e in examples])
    if review:
        lines += ["", f"Human review (`audit/review.json`): {_plural(review['reviewed'], 'question')} reviewed, "
                      f"{_plural(review['wrong_keys'], 'wrong key')} found"
                      + (f". Notes: {' '.join(review['notes'].split()).rstrip('.')}" if review.get("notes") else "") + "."]
    return lines


def _median(values: list[int]) -> str:
    return _num(statistics.median(values)) if values else "n/a"


def _corpus_rows(facts: CardFacts, corpus: CorpusCounts) -> tuple[list[dict], list[dict]]:
    """A corpus's count rows of this dataset's classes (all its rows when none of them has a row here) and,
    of those, the never-mentioned ones in class id order."""
    rows = [r for r in corpus.rows if r["class_id"] in facts.class_counts] or corpus.rows
    return rows, sorted((r for r in rows if r["mentions"] == 0), key=lambda r: r["class_id"])


def _coverage(facts: CardFacts, repo: Path, assets_dir: str) -> tuple[list[str], list[str]]:
    lines = ["## Class coverage", ""]
    written: list[str] = []
    counts = facts.class_counts
    if counts:
        values = sorted(counts.values())
        lines += [f"{_plural(len(counts), 'class')} {'has' if len(counts) == 1 else 'have'} at least one row"
                  + (f" ({facts.num_classes - len(counts)} of the {facts.num_classes}-class vocabulary have none)"
                     if facts.num_classes > len(counts) else "")
                  + f"; rows per class: min {values[0]}, median {_median(values)}, max {values[-1]}.", ""]
        write_bytes_atomic(repo / assets_dir / "class_counts.png", plot_class_counts(counts, facts.class_names))
        written.append("class_counts.png")
        lines += [f"![rows per class]({assets_dir}/class_counts.png)", ""]
        if len(counts) <= MAX_LISTED:
            lines += _table(["class id", "class", "rows"], [(c, _name(facts, c), counts[c]) for c in counts])
            lines.append("")
    else:
        lines += ["The data has no `class_id` column, so rows per class are not counted.", ""]
    for i, corpus in enumerate(facts.corpora):
        rows, never = _corpus_rows(facts, corpus)
        scope = "this dataset's classes" if rows is not corpus.rows else "all classes of the vocabulary"
        mentions = sorted(r["mentions"] for r in rows)
        ranked = sorted(rows, key=lambda r: (-r["mentions"], r["class_id"]))
        def listed(part: list[dict]) -> str:
            return ", ".join(f"{_name(facts, r['class_id'])} ({_num(r['mentions'])})" for r in part)
        docs = f" ({_num(corpus.documents)} documents)" if corpus.documents is not None else ""
        lines += [f"### Class-name frequency in `{corpus.name}`{docs}", "",
                  f"Counted by `python -m corpora_stats count` over {scope} ({len(rows)}): "
                  f"{len(never)} never mentioned, median {_median(mentions)} mentions per class. "
                  f"[Zhang et al., 2024]({PAPER_ZHANG}) found VLM accuracy on a class rises with how often its "
                  f"name appears in training data, so rarely mentioned classes are the ones this data helps most.",
                  ""]
        if len(ranked) <= 10:
            lines.append(f"- mentions per class, most to least: {listed(ranked)}")
        else:
            lines += [f"- most frequent: {listed(ranked[:5])}", f"- least frequent: {listed(ranked[::-1][:5])}"]
        if never:
            shown = ", ".join(_name(facts, r["class_id"]) for r in never[:10]) + (", …" if len(never) > 10 else "")
            lines.append(f"- never mentioned: {shown}")
        lines.append("")
        if i == 0:
            write_bytes_atomic(repo / assets_dir / "class_frequency.png",
                               plot_class_frequency(corpus.name, rows, facts.class_names))
            written.append("class_frequency.png")
            lines += [f"![class-name frequency]({assets_dir}/class_frequency.png)", ""]
    meta = facts.corpora_meta or {}
    lex = meta.get("lexicon") or {}
    if facts.corpora and lex:
        lines += [f"Counting method `{meta.get('method')}`: {lex.get('clean_forms')} name forms counted; "
                  f"{lex.get('flagged_forms')} forms flagged as ambiguous, shared between classes or too short "
                  f"were left out of the main counts ({', '.join(f'{k} {v}' for k, v in (lex.get('by_flag') or {}).items())}).",
                  ""]
    return lines, written


def _quality(facts: CardFacts, repo: Path, assets_dir: str) -> tuple[list[str], list[str]]:
    from imagewikiqa.report import report_markdown

    if not facts.quality:
        return [], []
    body = report_markdown(facts.quality).splitlines()
    if body and body[0].startswith("# "):
        body = body[1:]
    body = [("#" + line) if line.startswith("#") else line for line in body]
    lines = ["## Quality report", "",
             "From `quality_report.json` (written by the build; blind baselines never read the question):"]
    lines += body
    written = []
    if facts.quality.get("letters"):
        write_bytes_atomic(repo / assets_dir / "letters.png", plot_letters(facts.quality["letters"]))
        written.append("letters.png")
        image = ["", f"![correct letters]({assets_dir}/letters.png)"]
        after = next((i for i, line in enumerate(lines) if line.startswith("### Blind baselines")), len(lines))
        lines[after - 1:after - 1] = image
    return lines, written


def _bias(facts: CardFacts) -> list[str]:
    items = []
    ds = str(facts.dataset or "")
    if ds.startswith("imagenet") or facts.dataset_name.startswith("ImageNet"):
        items += [
            "ImageNet labels are noisy: many images hold several objects but carry one label, and re-annotation "
            "studies (e.g. Beyer et al., 2020; Northcutt et al., 2021) found a few percent of validation labels "
            "wrong. A model trained or judged on this data inherits those errors.",
            "ImageNet images were collected from web image search and photo sites and skew towards North America "
            "and Western Europe; people who appear in images are not demographically balanced, and some synsets "
            "were later found offensive or non-imageable (Yang et al., 2020). Do not use the data to draw "
            "conclusions about people.",
        ]
    elif facts.dataset:
        items.append(f"The data inherits the label noise and collection biases of {facts.dataset_name}.")
    names = [c for c in facts.class_counts if c in facts.renamed]
    items.append("Class names are ambiguous in places (e.g. 'crane' the bird and the machine, 'maillot' twice in "
                 "WordNet-derived lists); the names used here come from a curated list"
                 + (f" where {len(facts.renamed)} duplicate names were changed to be unique"
                    + (f" (affecting {len(names)} classes in this data)" if names else "") if facts.renamed else "")
                 + ". A model answering with a synonym or a broader name is marked wrong by exact-name grading.")
    if facts.kind == "imagewikiqa":
        gen = facts.config.get("generator")
        items.append("The questions are synthetic: generated "
                     + ("from WordNet relations (hypernyms, parts, members, substances) with template stems, so "
                        "their wording repeats and their knowledge is only as good as WordNet's"
                        if gen == "wordnet" else "by a language model from encyclopedia articles, so they can hold "
                        "its errors and phrasing habits")
                     + "; no person checked each one.")
        q = facts.quality or {}
        blind = q.get("blind_baselines") or {}
        if blind:
            items.append(f"Option biases remain measurable: picking the longest option scores "
                         f"{_pct(blind.get('longest'))}, the shortest {_pct(blind.get('shortest'))}, against "
                         f"{_pct(blind.get('random'))} for random guessing (see Quality report).")
        if not facts.config.get("verifier"):
            items.append("No verifier model checked that each question needs the image (or that its answer is "
                         "right); some may be answerable from the text alone or be wrong.")
    else:
        n_templates = sum(ps.used for ps in facts.prompts if ps.task == facts.hf_task)
        items.append(f"The instructions are synthetic: the question text comes from {n_templates or 'a few'} "
                     f"fixed template(s) and the answer is only the class name, so the data teaches naming, not "
                     f"description or reasoning; mix it with general instruction data (as the paper does) to "
                     f"avoid narrowing a model's answers.")
    if facts.targeted:
        items.append("Web images were labelled by their captions alone: a caption that names a class does not "
                     "mean the image shows it (logos, text, products, other senses of the name), so expect more "
                     "label noise than in a curated dataset; check them with `python -m builders.verify` "
                     "(`label_check`, `rank`) before training. URLs also go stale, so the set cannot be re-made "
                     "exactly from its URL list.")
    if facts.filtered or facts.verify:
        items.append("Model-based verification and filtering keep what the chosen models judge correct, so a "
                     "filtered set leans towards images those models find easy and inherits their blind spots.")
    if facts.total_rows < 1000:
        items.append(f"Only {facts.total_rows} rows: this is a small sample, fit for trying the tools and formats, "
                     f"not for training or for reporting benchmark results.")
    if facts.corpora:
        never = len(_corpus_rows(facts, facts.corpora[0])[1])
        if never:
            items.append(f"{never} of these classes are never mentioned in `{facts.corpora[0].name}`: models "
                         f"trained mostly on such corpora are likely to know these classes least.")
    return ["## Bias, risks and limitations", "", *(f"- {x}" for x in items)]


def _licence(facts: CardFacts, licence: tuple[str, str | None] | None) -> list[str]:
    from cards.metadata import license_for

    source_id, source_name, source_note = license_for(facts.licence_source)
    lines = ["## Licence", ""]
    if licence is not None:
        lines += [f"The publisher set the licence `{licence[0]}`"
                  + (f" ({licence[1]})" if licence[1] else "") + " for this repository. "
                  "The source data's own terms still apply to the images:", ""]
    else:
        lines += [f"`{source_id}`" + (f" ({source_name})" if source_name else "") + ".", ""]
    lines.append(source_note or "No note is recorded for the source dataset's terms.")
    if facts.kind == "imagewikiqa" and facts.config.get("generator") == "wordnet":
        lines += ["", "Question texts derive from WordNet 3.0, released under the WordNet licence (free use with "
                      "attribution to Princeton University)."]
    return lines


def _citation(facts: CardFacts) -> list[str]:
    from cards.metadata import known_source

    lines = ["## Citation", "", "If you use this data, cite the papers it follows:", ""]
    lines += _code(BIBTEX_PAPERS, "bibtex")
    source = known_source(facts.dataset)
    lines += ["", f"and the source dataset, {facts.dataset_name}:", ""]
    if source in BIBTEX_SOURCES:
        lines += _code(BIBTEX_SOURCES[source], "bibtex")
    else:
        lines.append("(no citation is recorded for this source; cite it as its authors ask)")
    if facts.kind == "imagewikiqa" and facts.config.get("generator") == "wordnet":
        lines += ["", "and WordNet, which the questions are generated from:", ""]
        lines += _code(BIBTEX_WORDNET, "bibtex")
    return lines


# ----- the body --------------------------------------------------------------------------------------------
def render_body(facts: CardFacts, repo_folder: str | Path, assets_dir: str = "assets", *,
                pretty_name: str | None = None,
                licence: tuple[str, str | None] | None = None, info: dict | None = None) -> str:
    """The card's Markdown body (everything after the YAML front matter) for the Hugging Face folder
    ``repo_folder``; writes the example image and plots it links to under ``repo_folder/assets_dir`` and
    removes stale ones. ``licence``: ``(id, name)`` the publisher chose instead of the source dataset's
    (:func:`cards.metadata.license_for`), None to state the source's; ``info``: :func:`cards.metadata.data_info`
    of ``repo_folder`` when already read."""
    repo = Path(repo_folder)
    if "/" in assets_dir.strip("/") or assets_dir in ("", ".", ".."):
        raise UserError(f"assets folder {assets_dir!r} must be one plain folder name")
    name = pretty_name or default_pretty_name(facts)
    structure, written = _structure(facts, repo, assets_dir, data_info(repo) if info is None else info)
    coverage, plots = _coverage(facts, repo, assets_dir)
    quality, letters = _quality(facts, repo, assets_dir)
    written += plots + letters
    stale = [p for p in sorted((repo / assets_dir).glob("*")) if p.is_file() and p.name not in written
             and (p.name in ASSET_NAMES or p.name.startswith("example."))]
    for p in stale:
        p.unlink()
    sections = [_summary(facts, name), structure, _creation(facts), _targeted(facts), _filtering(facts), coverage,
                quality,
                _bias(facts), _licence(facts, licence), _citation(facts)]
    text = "\n".join("\n".join(s).rstrip("\n") for s in sections if s)
    # one blank line between sections, none doubled
    out, blank = [], False
    for line in text.replace("\n## ", "\n\n## ").splitlines():
        if line.strip() == "" and blank:
            continue
        blank = line.strip() == ""
        out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n"
