"""Webhook handlers, one module per behaviour, each with its own ``router``; :mod:`bot.jobs.app`
composes them. ``schedule`` is the periodic rescan's job (a tick, not a webhook)."""
