"""The foundation every command builds on: class vocabulary, lexicon, WordNet, images, atomic I/O and resumable
stages, answer parsing and label judging, the VLM runtime, provenance. It imports nothing above it."""
