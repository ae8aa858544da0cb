"""``python -m vlm_classdata.lexicon.build_entry FOLDER``: build one lexicon cache entry in this process (the child
of :func:`vlm_classdata.lexicon.table.build_apart`). ``FOLDER`` holds ``classes.json`` (the vocabulary) and
``spec.json`` (``key``, ``plurals``, ``aliases``). Exit 0 when the entry is stored.

NLTK's package initializer imports scikit-learn, SciPy, matplotlib and pandas where they are installed, none of
which the WordNet reader uses; this process marks them unavailable, which NLTK tolerates, so building an entry
peaks at ~120 MB instead of ~290 MB and saves about a CPU-second."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlm_classdata.lexicon.cache import store_forms
from vlm_classdata.lexicon.table import wordnet_forms
from vlm_classdata.vocabulary import ClassVocabulary

NOT_NEEDED = ("sklearn", "scipy", "matplotlib", "pandas")


def main(folder: str) -> int:
    for name in NOT_NEEDED:
        sys.modules.setdefault(name, None)  # an import of it raises ImportError, which NLTK catches
    spec = json.loads((Path(folder) / "spec.json").read_text(encoding="utf-8"))
    vocab = ClassVocabulary.load(str(Path(folder) / "classes.json"))
    forms = wordnet_forms(vocab, spec["plurals"], spec["aliases"])
    return 0 if store_forms(spec["key"], forms) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
