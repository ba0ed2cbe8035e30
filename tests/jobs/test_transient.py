"""Which failures the worker retries, and the rate-limit figure reaching /metrics."""

from __future__ import annotations

import httpx
import pytest

from bot import jobs, metrics
from bot.github import RATE_LISTENERS, GitHubError, RateLimited, record_rate
from bot.jobs import app


def _http_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    req = httpx.Request("GET", "https://api.github.com/x")
    return httpx.HTTPStatusError(
        "x", request=req, response=httpx.Response(status, headers=headers, request=req)
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (jobs.Transient("busy", retry_after=7), (True, 7)),
        (ConnectionResetError(), (True, None)),
        (httpx.ConnectTimeout("slow"), (True, None)),
        (_http_error(503, {"Retry-After": "12"}), (True, 12.0)),
        (_http_error(404), (False, None)),
        (GitHubError(502, "Server Error"), (True, None)),
        (GitHubError(429, "Too Many", {"Retry-After": "3"}), (True, 3.0)),
        (GitHubError(422, "Validation Failed"), (False, None)),
        (GitHubError(409, "Reference update failed"), (True, None)),
        (RateLimited(403, "rate limit", wait=1800), (True, 1800)),
        (ValueError("a bug"), (False, None)),
    ],
)
def test_is_transient(exc: BaseException, expected):
    assert jobs.is_transient(exc) == expected


def test_github_rate_limit_reaches_the_gauge():
    app.start()
    assert RATE_LISTENERS.count(metrics.set_github_rate_limit) == 1
    app.start()  # idempotent
    assert RATE_LISTENERS.count(metrics.set_github_rate_limit) == 1
    record_rate(4242, {"X-RateLimit-Remaining": "4321", "X-RateLimit-Resource": "core"})
    assert 'pullable_github_rate_limit_remaining{installation="4242",resource="core"} 4321.0' in (
        metrics.render().decode()
    )
