"""The errors of the targeted flow that are not a user's mistake (those are :class:`UserError`)."""

from __future__ import annotations


class TargetedError(RuntimeError):
    """The download cannot be accounted for or built from (a lost or duplicated row, nothing downloaded)."""


class DownloadIncomplete(TargetedError):
    """Some img2dataset shards did not finish; running the same command again resumes them."""
