"""Sources: ImageNet on disk, any ImageFolder, a Hugging Face dataset, a manifest JSONL, WebDataset shards.

Open one by kind with :func:`builders.sources.registry.open_source`.
"""
