"""Webhook handlers, one module per behaviour; importing this package registers them all.

Issue 6 adds its modules (``comments`` for ``issue_comment``, ``pull_requests`` for
``pull_request``) to the import list below.
"""

from bot.jobs.handlers import installation, push, schedule

__all__ = ["installation", "push", "schedule"]
