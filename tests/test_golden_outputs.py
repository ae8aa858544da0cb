"""Every command's outputs on the embedded sample are exactly those recorded before the architecture change
(fixture ``tests/golden/outputs.json``, recorded at commit b4f3409 with ``python tests/golden_outputs.py
--write``). A refactor that changes one byte of what a command writes fails here, naming the files."""

from __future__ import annotations

import json

from golden_outputs import FIXTURE, run_all, snapshot


def test_outputs_match_the_fixture(tmp_path) -> None:
    want = json.loads(FIXTURE.read_text())
    got = snapshot(run_all(tmp_path / "o"))
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    assert not (missing or extra or changed), f"missing {missing}; new {extra}; changed {changed}"
    assert len(got) > 60
