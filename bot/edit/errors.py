"""The one exception of the edit engine, in its own module so every part of it can raise it."""

from __future__ import annotations


class EditError(ValueError):
    """Why an edit cannot be made. The message is shown to reviewers as advice, so it names the
    file's construct and what a person would change by hand."""
