"""Targeted data for under-exposed classes: mine a URL list, download it with img2dataset, then build.

    python -m corpora_stats mine ... --out MINED                   # picks classes, writes MINED/urls.parquet
    python -m builders.targeted --mined MINED --out OUT            # downloads, builds, reports per class
    python -m builders.targeted --mined MINED --out OUT            # again: resumes, nothing is fetched twice

The MINED folder (written by ``corpora_stats mine``): ``urls.parquet`` (url, caption, class_id, class_name,
matched_form, corpus, row; URLs unique), ``classes.json`` (the vocabulary the counts were made with) and
``mine_report.json`` (the rule, the counts it read, per-class doc_freq/matched/mined).

OUT holds:

- ``shards/`` — img2dataset's webdataset output: per shard ``NNNNN.tar`` (successful samples: jpg, txt, json
  with ``class_id``/``class_name``/``matched_form``), ``NNNNN.parquet`` (every input row with its
  ``status``/``error_message``) and ``NNNNN_stats.json`` (written last: img2dataset's ``incremental`` mode
  skips a shard that has it). Finished tars are rewritten once in key order with zeroed header times, so a
  shard's bytes do not depend on download completion order.
- ``.stages/shard-NNNNN.done.json`` — a shard is done (:class:`vlm_classdata.stages.Stages`) only when its parquet lists
  each URL of its slice of ``urls.parquet`` exactly once and its tar holds one image per downloaded row; a
  shard img2dataset finished that fails this check (a sample it dropped, a tar cut off by a full disk) is
  removed, the run stops with :class:`DownloadIncomplete`, and the next run fetches that shard again.
- ``.state/`` — the download settings (a download with others is refused) and the shards the build was made
  from (a build from other shards is redone), as :class:`vlm_classdata.stages.Stages` markers.
- the run lock (``vlm_classdata.stages.open_out``): one run per OUT; temporary files of killed runs are removed.
- ``download.json`` — per class: mined, downloaded, failed by reason; the settings that shaped the shards.
- ``build/`` — the builder (:func:`builders.build.build`, a webdataset source) on the shards; its ``manifest.json``
  gains a ``targeted`` section: ``{"mine": <mine_report.json>, "download": <download.json>, "kept": {...}}``.
- ``img2dataset.log`` — img2dataset's own output when progress is off.

Per class, ``mined == downloaded + sum(failed)`` is checked against the shards' parquet files (each mined URL
must appear exactly once); a failed shard stops the run with :class:`DownloadIncomplete` (run it again).

Modules: :mod:`.options` (typed options), :mod:`.mined` (the MINED folder), :mod:`.download` (img2dataset and
the shards: :mod:`.fetch`, :mod:`.shards`, :mod:`.account`, :mod:`.reasons`), :mod:`.build` (the builder's
library entry point on the shards), :mod:`.loop` (download → build, the per-class table; mining in the same
command is :func:`corpora_stats.mine.mine_urls`),
:mod:`.state` (OUT's run lock and resume state); ``python -m builders.targeted`` is :mod:`.__main__`.
"""
