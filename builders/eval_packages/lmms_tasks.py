"""lmms-eval task folders for this project's parquet evaluation sets.

:func:`write_task_folder` writes one folder that ``lmms-eval --include_path FOLDER --tasks NAME`` runs:

    FOLDER/<task name>.yaml   one per (evaluation set, split): the parquet files listed by relative path
    FOLDER/utils.py           the task functions (a copy of :mod:`builders.eval_packages.lmms_task_utils`)
    FOLDER/README.md          the exact command

lmms-eval's ``load_yaml_config`` resolves relative ``dataset_kwargs.data_files`` file paths against the YAML's
folder when ``dataset_path`` is ``parquet``, so the folder keeps working wherever the build is moved.
Every file is deterministic and written atomically; task files of an earlier write that are no longer wanted
are removed, so the folder is rewritten as a whole each time.

:func:`build_tasks` names the tasks of one finished build (``vlmcd_<dataset>_<open|mcqK>_<split>``, from the
manifest's parquet evaluation outputs); :func:`write_build_tasks` is the hook the build calls at its end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from vlm_classdata.atomic import write_bytes_atomic, write_text_atomic

FOLDER = "lmms_eval"
UTILS_FILE = "utils.py"
README_FILE = "README.md"
TASK_PREFIX = "vlmcd_"
TEMPLATE = Path(__file__).with_name("lmms_task_utils.py")
KINDS = ("mcq", "open")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "mcq": ("id", "image", "text", "answer", "answer_index", "options"),
    "open": ("id", "image", "text", "answer", "class_id"),
}
"""The flat columns each kind of task reads (see the column table in the README)."""
MAX_NEW_TOKENS = {"mcq": 16, "open": 32}
_SHARD = re.compile(r"(?P<split>\w+(?:\.\w+)*)-\d{5}-of-\d{5}\.parquet")
_NAME_BAD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class LmmsTask:
    """One lmms-eval task: its ``name``, ``kind`` (``mcq`` or ``open``), the ``split`` it evaluates and its
    parquet ``data_files`` as POSIX paths relative to the task folder."""

    name: str
    kind: str
    split: str
    data_files: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"lmms-eval task kind must be one of {KINDS}, got {self.kind!r}")
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"lmms-eval task name {self.name!r} must be lowercase letters, digits and _")
        if not self.data_files or any(Path(f).is_absolute() for f in self.data_files):
            raise ValueError(f"task {self.name}: data files must be relative paths, got {self.data_files!r}")


def task_name(dataset: str, kind: str, split: str, choices: int | None = None) -> str:
    """``vlmcd_<dataset>_<open|mcqK>_<split>``, lowercased, runs of other characters as one ``_``."""
    part = f"mcq{choices}" if kind == "mcq" else kind
    return TASK_PREFIX + "_".join(_NAME_BAD.sub("_", s.lower()).strip("_") for s in (dataset, part, split))


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax, ASCII only)."""
    return json.dumps(text, ensure_ascii=True)


def task_yaml(task: LmmsTask) -> str:
    """The task's YAML text (same task → same bytes)."""
    files = "".join(f"      - {_q(f)}\n" for f in task.data_files)
    return (
        "# lmms-eval task written by vlm-classdata; rewritten by every build or export\n"
        f"task: {_q(task.name)}\n"
        "dataset_path: parquet\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    {_q(task.split)}:\n{files}"
        f"test_split: {_q(task.split)}\n"
        "output_type: generate_until\n"
        "doc_to_visual: !function utils.doc_to_visual\n"
        "doc_to_text: !function utils.doc_to_text\n"
        "doc_to_target: answer\n"
        f"process_results: !function utils.process_{task.kind}\n"
        "metric_list:\n"
        "  - metric: accuracy\n"
        "    aggregation: mean\n"
        "    higher_is_better: true\n"
        "generation_kwargs:\n"
        f"  max_new_tokens: {MAX_NEW_TOKENS[task.kind]}\n"
        "  temperature: 0\n"
        "  do_sample: false\n"
        "  num_beams: 1\n"
        "lmms_eval_specific_kwargs:\n"
        "  default:\n"
        "    pre_prompt: \"\"\n"
        "    post_prompt: \"\"\n"
        "metadata:\n"
        "  version: 1.0\n"
    )


def readme_text(tasks: Sequence[LmmsTask], folder: str = FOLDER) -> str:
    """The folder's README: what each task is and the exact command (run from the folder above); the command
    names the evaluation tasks (every split but ``train``), or all tasks when there are no others."""
    shown = [t.name for t in tasks if t.split != "train"] or [t.name for t in tasks]
    lines = ["# lmms-eval tasks", "",
             "Written by vlm-classdata. Run from the folder that holds this one (the environment needs",
             "`lmms-eval` and this project's package, whose answer parser and label judge score the replies):", "",
             "```bash",
             f"lmms-eval --model qwen2_5_vl --model_args pretrained=Qwen/Qwen2.5-VL-3B-Instruct --include_path {folder} \\",
             f"  --tasks {','.join(shown)} --batch_size 1 --log_samples --output_path lmms_eval_results",
             "```", "",
             "| task | kind | split | data |", "|---|---|---|---|"]
    for t in tasks:
        kind = "multiple choice (parse_choice)" if t.kind == "mcq" else "open world (label judge, synonyms)"
        lines.append(f"| `{t.name}` | {kind} | `{t.split}` | {', '.join(f'`{f}`' for f in t.data_files)} |")
    lines += ["", "Metric `accuracy` (mean over rows). `doc_to_text` is the row's `text` (the canonical eval prompt),",
              "`doc_to_target` its `answer`. With `--log_samples`, one JSON line per row lands in",
              "`lmms_eval_results/<model>/<date>_samples_<task>.jsonl`: `doc_id` (the row's position in the split,",
              "files in the order listed above), `input` (the prompt), `target`, `filtered_resps` (the reply),",
              "`doc_hash`, `accuracy`.", ""]
    return "\n".join(lines)


def write_task_folder(folder: Path, tasks: Sequence[LmmsTask]) -> list[Path]:
    """Write ``folder`` (YAMLs, ``utils.py``, ``README.md``) for ``tasks``; remove task YAMLs of an earlier
    write that are not among them (and everything this writes, when ``tasks`` is empty). Returns the files."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"lmms-eval task names repeat: {names}")
    keep = {f"{n}.yaml" for n in names}
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and path.name.startswith(TASK_PREFIX) and path.suffix == ".yaml" and path.name not in keep:
                path.unlink()
    if not tasks:
        for name in (UTILS_FILE, README_FILE):
            (folder / name).unlink(missing_ok=True)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return []
    written = []
    for task in sorted(tasks, key=lambda t: t.name):
        path = folder / f"{task.name}.yaml"
        write_text_atomic(path, task_yaml(task))
        written.append(path)
    write_bytes_atomic(folder / UTILS_FILE, TEMPLATE.read_bytes())
    write_text_atomic(folder / README_FILE, readme_text(sorted(tasks, key=lambda t: t.name), folder.name))
    return [*written, folder / UTILS_FILE, folder / README_FILE]


def split_files(files: Sequence[str]) -> dict[str, list[str]]:
    """Parquet shard files (``…/<split>-00000-of-0000N.parquet``) grouped by split, in shard order."""
    by_split: dict[str, list[str]] = {}
    for f in sorted(files):
        m = _SHARD.fullmatch(Path(f).name)
        if m:
            by_split.setdefault(m.group("split"), []).append(f)
    return by_split


def has_columns(out_dir: Path, files: Sequence[str], kind: str) -> bool:
    """Whether the parquet files hold every column a ``kind`` task reads."""
    return all(set(REQUIRED_COLUMNS[kind]) <= set(pq.read_schema(out_dir / f).names) for f in files)


def build_tasks(out_dir: Path, manifest: dict) -> list[LmmsTask]:
    """The tasks of a finished build: one per parquet evaluation output (writer ``hf_parquet``, task ``mcq`` or
    ``open``) and split. An output whose parquet lacks the flat columns the tasks read gets none."""
    dataset = str(manifest.get("vocabulary", {}).get("dataset") or "dataset")
    choices = manifest.get("config", {}).get("mcq_choices")
    tasks = []
    for spec in manifest.get("outputs", {}).values():
        kind = spec.get("task")
        if spec.get("writer") != "hf_parquet" or kind not in KINDS:
            continue
        for split, files in split_files(spec.get("files", [])).items():
            if not has_columns(out_dir, files, kind):
                continue
            rel = tuple(Path("..", f).as_posix() for f in files)
            tasks.append(LmmsTask(task_name(dataset, kind, split, choices), kind, split, rel))
    return tasks


def write_build_tasks(out_dir: Path, manifest: dict) -> list[Path]:
    """Rewrite ``out_dir/lmms_eval/`` for the build's parquet evaluation outputs; return its files."""
    return write_task_folder(Path(out_dir) / FOLDER, build_tasks(Path(out_dir), manifest))
