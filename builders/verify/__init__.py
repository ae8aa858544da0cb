"""VLM verification passes over built data: label_check, mcq, blind, rank; sidecars and filters."""
