"""TRL's ``SFTTrainer`` trains a tiny LLaVA on the ``hf`` and ``hf_messages`` outputs exactly as written.

The embedded sample is built with ``--outputs hf,hf_messages``, loaded with ``datasets.load_dataset`` and handed
to the real trainer with no column renames and no collator of our own. From a batch of the trainer's own
dataloader (sequential sampler: batch row i is dataset row i): in ``hf`` (prompt/completion) the positions that
carry loss are exactly the answer's tokens and the end-of-sequence token the chat template closes the turn with;
no image or prompt token does. ``hf_messages`` (chat ``messages``) supervises the whole sequence, image tokens
included: the contrast that answer-only loss is for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from inprocess import run_main
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.writers.hf_parquet import HFParquetWriter, rows_to_table
from vlm_classdata.errors import UserError
from vlm_classdata.vlm.tiny import make_tiny_llava

if TYPE_CHECKING:
    from trl import SFTTrainer

BATCH = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The embedded sample built with the two TRL outputs."""
    out = tmp_path_factory.mktemp("trl_build")
    res = run_main(build_main, "--outputs", "hf,hf_messages", "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A tiny random LLaVA (processor + chat template) saved offline."""
    return make_tiny_llava(str(tmp_path_factory.mktemp("tiny_llava")))


def trainer(model_dir: str, train: datasets.Dataset, out: Path, steps: int) -> SFTTrainer:
    """A real ``SFTTrainer`` on CPU with TRL's defaults for the data (collator, loss masking)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration  # heavy: imported when a test runs,
    from trl import SFTConfig, SFTTrainer  # not when every worker collects the suite (~5 s)

    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=BATCH, learning_rate=1e-3,
                     use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                     logging_steps=1, dataloader_pin_memory=False, train_sampling_strategy="sequential")
    model = LlavaForConditionalGeneration.from_pretrained(model_dir)
    return SFTTrainer(model=model, args=args, train_dataset=train,
                      processing_class=AutoProcessor.from_pretrained(model_dir))


def train_and_check(tr: SFTTrainer, steps: int) -> list[float]:
    """Train; the run completes ``steps`` steps with a finite loss at each. Returns the logged losses."""
    result = tr.train()
    losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    assert result.global_step == steps and len(losses) == steps
    assert all(math.isfinite(x) for x in [*losses, result.training_loss])
    return losses


def load(folder: Path, cache: Path) -> datasets.DatasetDict:
    """``datasets.load_dataset`` of a written output folder; its ``images`` decode to one PIL image per row."""
    ds = datasets.load_dataset(str(folder), cache_dir=str(cache))
    first = ds["train"][0]["images"]
    assert len(first) == 1 and first[0].size[0] > 0
    return ds


def test_hf_prompt_completion_trains_on_the_answer_tokens_only(built, model_dir, tmp_path):
    ds = load(built / "hf", tmp_path / "cache")
    train = ds["train"]
    assert {"id", "images", "prompt", "completion", "label", "class_id", "class_name"} <= set(train.column_names)
    tr = trainer(model_dir, train, tmp_path / "run", steps=3)
    assert tr.completion_only_loss  # TRL's own default for prompt/completion data, nothing set by us
    tok = tr.processing_class.tokenizer
    image_id = tok.convert_tokens_to_ids("<image>")
    batch = next(iter(tr.get_train_dataloader()))
    assert batch["pixel_values"].shape[0] == BATCH
    for i in range(BATCH):
        row = train[i]
        assert row["completion"] == [{"role": "assistant", "content": [{"type": "text", "text": row["class_name"]}]}]
        ids, labels, attn = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        supervised = (labels != -100).nonzero().flatten()
        answer = tok(" " + row["class_name"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert ids[supervised].tolist() == answer and labels[supervised].tolist() == answer
        # the answer closes the sequence: the supervised positions are the last attended ones
        assert supervised.tolist() == attn.nonzero().flatten()[-len(answer):].tolist()
        assert (ids == image_id).sum() == 16 and not ((ids == image_id) & (labels != -100)).any()
        prompt = tok.decode(ids[(attn == 1) & (labels == -100)])
        assert prompt.endswith(row["prompt"][0]["content"][1]["text"] + " ASSISTANT:")
    train_and_check(tr, steps=3)


def test_hf_messages_trains_on_the_whole_sequence(built, model_dir, tmp_path):
    import torch  # heavy: see trainer()

    ds = load(built / "hf_messages", tmp_path / "cache")
    tr = trainer(model_dir, ds["train"], tmp_path / "run", steps=2)
    assert not tr.completion_only_loss
    image_id = tr.processing_class.tokenizer.convert_tokens_to_ids("<image>")
    batch = next(iter(tr.get_train_dataloader()))
    ids, labels, attn = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert torch.equal(labels[attn == 1], ids[attn == 1])  # every real token carries loss
    assert ((ids == image_id) & (labels != -100)).sum() == 16 * BATCH  # the image placeholders too
    train_and_check(tr, steps=2)


def test_images_column_is_stored_once_and_rebuilds_byte_identical(built, tmp_path):
    again = tmp_path / "again"
    assert run_main(build_main, "--outputs", "hf,hf_messages", "--out", str(again), "--quiet").returncode == 0
    files = sorted((built / "hf" / "data").glob("*.parquet"))
    assert [f.read_bytes() for f in files] == [(again / "hf" / "data" / f.name).read_bytes() for f in files]
    table = pq.read_table(files[0])
    assert "image" not in table.column_names
    assert table.schema.field("images").type == pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    cells = table.column("images").to_pylist()
    assert all(len(c) == 1 and c[0]["bytes"] for c in cells)  # one image per row, stored once
    row_group = pq.ParquetFile(files[0]).metadata.row_group(0)
    codecs = {row_group.column(i).path_in_schema: row_group.column(i).compression
              for i in range(row_group.num_columns)}
    assert codecs["images.list.element.bytes"] == "UNCOMPRESSED" and codecs["id"] == "ZSTD"
    # the writer's own list assembly gives what pyarrow's conversion gives
    assert rows_to_table(table.to_pylist(), table.schema).equals(table)


def test_unknown_image_column_option_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match="image_column"):
        HFParquetWriter(tmp_path, {"image_column": "picture"})
