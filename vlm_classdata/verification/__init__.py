"""Verification of built data and benchmarks by vision-language models, and filters over the results.

* :mod:`.items` — the questions to ask (build outputs, LLaVA-eval or ImageWikiQA JSONL) as ``Item`` objects.
* :mod:`.passes` — what each pass (label_check, mcq, blind, rank) asks and how it judges the reply.
* :mod:`.jobs`, :mod:`.workers`, :mod:`.chunk_cache`, :mod:`.runner` — one pass × model run: chunks answered
  locally or on Ray, cached as parts marked done with :class:`vlm_classdata.stages.Stages`, one sidecar out.
* :mod:`.summary` — the pass summary JSON, the ``runs.jsonl`` row, the summary table.
* :mod:`.session` — the ``verify run`` command as a library call.
* :mod:`.sidecars`, :mod:`.rules`, :mod:`.filtered_files`, :mod:`.filtered_build` — keep/drop rules over the
  sidecars and the filtered copy of a build.
* :mod:`.audit` — the label-noise audit: rules over label_check verdicts, the review gallery, relabel suggestions.
"""
