"""Webhook handlers, one module per behaviour; importing this package registers them all.

Issue 6 adds its modules (``comments`` for ``issue_comment``, ``pull_requests`` for
``pull_request``) to the import list below.
"""

from bot.jobs.handlers import comments, installation, pull_closed, pull_request, push, schedule

__all__ = ["comments", "installation", "pull_closed", "pull_request", "push", "schedule"]
