"""Typed records: the JSON files one command writes and another reads (manifests, summaries, reports).

Each record validates on read (:meth:`~vlm_classdata.records.base.Record.read`) and writes exactly its file's
bytes (:meth:`~vlm_classdata.records.base.Record.write`). Modules: :mod:`.base`, :mod:`.build_manifest`,
:mod:`.run_log`, :mod:`.verification`, :mod:`.count_meta`, :mod:`.imagewikiqa`.
"""
