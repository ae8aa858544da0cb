"""Ready-to-run evaluation packages shipped with eval outputs: lmms-eval task folders (:mod:`.lmms_tasks`,
whose task functions are :mod:`.lmms_task_utils`, copied beside the YAMLs as ``utils.py``)."""
