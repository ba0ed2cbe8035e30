"""Comment commands through the web app, the journal and the fake GitHub (issue 6 §3; security.md
§4.3 and §7.1 W11-W21): who is obeyed, what is ignored, what is replied, what is never duplicated."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.github import issues
from bot.github.markdown import marker
from bot.jobs import commands, dashboard
from bot.jobs.handlers import comments
from bot.jobs.queue import Queue, execute
from bot.web import create_app
from tests.support.webhooks import app_settings

REPO = "octo-org/demo"


@pytest.fixture
def h(fake_github, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A repository with an issue #1 and people of every role; ``post`` delivers a comment and runs
    the jobs it causes, except scans (they need registries: their payloads are checked instead)."""
    monkeypatch.setenv("PULLABLE_GITHUB_PACING", "0")
    app = fake_github.create_app()
    inst = fake_github.create_installation(app)
    repo = fake_github.create_repo(REPO, {"README.md": "# demo\n"}, installation=inst)
    fake_github._new_issue(repo, "Something is off", "body", "octocat")
    for login, role in [("writer", "write"), ("maint", "maintain"), ("boss", "admin"), ("reader", "read"),
                        ("triager", "triage")]:  # fmt: skip
        fake_github.add_collaborator(repo, login, role)
    settings = app_settings(tmp_path / "data", app, fake_github.base_url, webhook_secret=app.webhook_secret)
    queue = Queue(settings)
    client = create_app(settings, queue).test_client()
    issues._logins.clear()
    ns = SimpleNamespace(fake=fake_github, app=app, inst=inst, repo=repo, queue=queue, settings=settings)

    def deliver(payload: dict, event: str = "issue_comment", delivery_id: str | None = None) -> str:
        d = fake_github.delivery(event, payload, app, delivery_id)
        r = client.post("/api/github/webhooks", data=d.body, headers=d.headers)
        assert r.status_code in (200, 202), r.json
        if r.status_code == 202:
            execute(queue, r.json["job"])
        drain()
        return r.json["result"] if "result" in r.json else str(r.status_code)

    def drain() -> None:
        while True:
            with queue.journal.store.transaction() as t:
                todo = [j for j in t.open_jobs() if j.kind not in ("scan", "check") and j.state == "queued"]
            if not todo:
                return
            for j in sorted(todo, key=lambda j: j.created_at):
                execute(queue, j.id)

    def post(body: str, user: str = "writer", number: int = 1, **tweak) -> dict:
        payload = fake_github.comment(repo, number, body, user=user, installation=inst)
        for k, v in tweak.items():
            payload["comment"][k] = v
        deliver(payload)
        return payload

    ns.deliver, ns.post, ns.drain = deliver, post, drain
    return ns


def queued(h, kind: str) -> list:
    with h.queue.journal.store.transaction() as t:
        return [j for j in t.open_jobs() if j.kind == kind]


def bot_comments(h, number: int = 1) -> list[str]:
    return [c.body for c in h.repo.comments.values() if c.issue == number and c.user == "pullable[bot]"]


def reactions(h, comment_id: int) -> list[tuple[str, str]]:
    return [(u, c) for _, u, c in h.repo.comments[comment_id].reactions]


def test_rescan_from_a_writer(h) -> None:
    payload = h.post("/pullable rescan")
    cid = payload["comment"]["id"]
    assert reactions(h, cid) == [("pullable[bot]", "eyes")]
    (text,) = bot_comments(h)
    assert text.startswith("Rescan queued") and marker("reply", {"to": cid}) in text
    (scan,) = queued(h, "scan")
    assert scan.repo == REPO.lower() and scan.payload["paths"] is None and scan.payload["ref"] is None
    assert scan.payload["installation_id"] == h.inst.id  # from the signed payload


@pytest.mark.parametrize("user", ["writer", "maint", "boss"])
def test_write_maintain_and_admin_are_obeyed(h, user: str) -> None:
    h.post("/pullable rescan", user=user)
    assert len(queued(h, "scan")) == 1


@pytest.mark.parametrize(
    ("user", "association"),
    [("reader", "MEMBER"), ("triager", "COLLABORATOR"), ("stranger", "NONE"), ("reader", "OWNER")],
)
def test_read_and_triage_are_refused_whatever_the_payload_says(h, user: str, association: str) -> None:
    """W13: author_association is never what decides."""
    h.fake.user(user)
    h.fake.reset_log()
    h.post("/pullable rescan", user=user, author_association=association)
    (text,) = bot_comments(h)
    assert "could not confirm" in text and "Nothing was done" in text
    assert not queued(h, "scan")
    tokens = [e.body for e in h.fake.log if e.path.endswith("/access_tokens")]
    assert tokens and all(set(b["permissions"]) <= set(comments.CONVERSE) for b in tokens)
    assert all(b["permissions"].get(k) != "write" for b in tokens for k in ("contents", "pull_requests"))


def test_private_member_with_write_shown_as_contributor_is_obeyed(h) -> None:
    """W14."""
    h.post("/pullable rescan", user="writer", author_association="CONTRIBUTOR")
    assert len(queued(h, "scan")) == 1


def test_outsider_on_a_public_repository_is_refused(h) -> None:
    """W15: everybody can read a public repository; reading is not enough."""
    h.repo.private = False
    h.fake.user("passer-by")
    h.post("/pullable rescan", user="passer-by")
    assert not queued(h, "scan") and "could not confirm" in bot_comments(h)[0]


@pytest.mark.parametrize("status", [403, 404, 500])
def test_permission_api_failures_refuse(h, status: int) -> None:
    """W16: fail closed."""
    h.fake.fail("/collaborators/writer/permission", times=10, status=status)
    h.post("/pullable rescan")
    assert not queued(h, "scan") and "could not confirm" in bot_comments(h)[0]


def test_edited_and_deleted_comments_are_ignored(h) -> None:
    """W12 (and W11: an action nobody handles is a 2xx with no job)."""
    for action in ("edited", "deleted"):
        payload = h.fake.comment(h.repo, 1, "/pullable rescan", user="writer", installation=h.inst)
        payload["action"] = action
        assert h.deliver(payload) == "ignored"
    assert not queued(h, "command") and not queued(h, "scan") and not bot_comments(h)


@pytest.mark.parametrize(
    ("user", "kind"),
    [("pullable[bot]", "Bot"), ("dependabot[bot]", "Bot"), ("helper-bot", "Bot")],
)
def test_bots_are_ignored(h, user: str, kind: str) -> None:
    """W17: not even Pullable's own help text, quoted back, makes a loop."""
    h.fake.user(user, kind)
    h.fake.reset_log()
    h.post(commands.HELP + "\n/pullable rescan", user=user)
    h.post("/pullable help", user=user)
    assert not queued(h, "command") and not h.fake.log


@pytest.mark.parametrize(
    "body",
    [
        "> /pullable rescan",
        "```\n/pullable rescan\n```",
        "please /pullable rescan",
        "/pullable rescan; rm -rf /",
        "/pullable rescan\n/pullable rescan",
        "`/pullable rescan`",
    ],
)
def test_things_that_are_not_commands(h, body: str) -> None:
    """W18: nothing queued, no API call, no reply."""
    h.fake.reset_log()
    h.post(body)
    assert not queued(h, "command") and not h.fake.log and not bot_comments(h)


def test_replayed_old_comments_are_ignored(h) -> None:
    """W19."""
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    h.post("/pullable rescan", created_at=old)
    assert not queued(h, "command") and not bot_comments(h)


def test_redelivery_duplicates_nothing(h) -> None:
    payload = h.fake.comment(h.repo, 1, "/pullable rescan", user="writer", installation=h.inst)
    h.deliver(payload, delivery_id="same-guid")
    assert h.deliver(payload, delivery_id="same-guid") == "duplicate"
    # GitHub's manual redelivery of a delivery whose job failed runs again; so does a retried job
    h.deliver(payload, delivery_id="another-guid")
    assert len(bot_comments(h)) == 1
    assert reactions(h, payload["comment"]["id"]) == [("pullable[bot]", "eyes")]


def test_a_hundred_rescans_make_one_scan(h) -> None:
    """W21: one scan waits; the commands within the budget join it (and say so), the first one
    over it is answered "too many", the rest are dropped before any API call."""
    payloads = [
        h.fake.comment(h.repo, 1, "/pullable rescan", user="writer", installation=h.inst) for _ in range(100)
    ]
    assert payloads[0]["comment"]["author_association"] == "COLLABORATOR"
    calls_after = []
    for p in payloads:
        d = h.fake.delivery("issue_comment", p, h.app)
        web = create_app(h.settings, h.queue).test_client()
        r = web.post("/api/github/webhooks", data=d.body, headers=d.headers)
        execute(h.queue, r.json["job"])
        h.drain()
        calls_after.append(len(h.fake.log))
    assert len(queued(h, "scan")) == 1
    texts = bot_comments(h)
    limit = comments.MEMBER_LIMIT
    assert len(texts) == limit + 1
    assert sum("already waiting" in t for t in texts) == limit - 1 and "only a few commands" in texts[-1]
    assert len(set(calls_after[limit + 1 :])) == 1  # the other 89 cost no API call


def outsider_flood(h, n: int, user: str = "passer-by") -> tuple[int, int]:
    """``n`` signed ``/pullable rescan`` comments from ``user`` (real payloads), each delivered to
    the web app and its jobs run; (replies posted, API calls made) by Pullable."""
    h.repo.private = False
    h.fake.user(user)
    h.fake.reset_log()
    mine = len(bot_comments(h))
    for _ in range(n):
        h.post("/pullable rescan", user=user)
    return len(bot_comments(h)) - mine, len(h.fake.log)


def test_twenty_commands_from_an_outsider_cost_one_reply(h) -> None:
    """W21 / issue 11 item 7: before, 20 comments made 20 refusals and 82 API calls."""
    replies, calls = outsider_flood(h, 20)
    print(f"\n20 outsider commands: {replies} reply, {calls} API calls")
    assert replies == 1 and "could not confirm" in bot_comments(h)[-1]
    assert calls <= 4  # a token, the permission, the reply, the token's revocation
    assert not queued(h, "scan") and not queued(h, "command")
    assert not [e for e in h.fake.log if "reactions" in e.path]


def test_an_outsider_is_answered_once_even_when_the_comments_race(h) -> None:
    """Every delivery's handler runs before any command job does (busy workers): the budget caps
    the jobs, and the jobs after the first refusal make no call."""
    h.repo.private = False
    h.fake.user("passer-by")
    h.fake.reset_log()
    for _ in range(20):
        payload = h.fake.comment(h.repo, 1, "/pullable rescan", user="passer-by", installation=h.inst)
        d = h.fake.delivery("issue_comment", payload, h.app)
        r = (
            create_app(h.settings, h.queue)
            .test_client()
            .post("/api/github/webhooks", data=d.body, headers=d.headers)
        )
        execute(h.queue, r.json["job"])  # the handler only; command jobs wait
    assert len(queued(h, "command")) == comments.OTHER_LIMIT + 1
    h.drain()
    assert len(bot_comments(h)) == 1 and len(h.fake.log) <= 4


def test_a_refused_author_is_asked_again_after_the_quiet_period(h, monkeypatch) -> None:
    outsider_flood(h, 3)
    monkeypatch.setattr(comments, "REFUSED_QUIET", 0.0)
    h.queue.journal.remember("refused:octo-org/demo:passer-by", {"comment_id": 0}, 0.0)  # expired
    h.queue.journal.remember("commands:octo-org/demo:passer-by", {"times": []}, 0.0)
    replies, _ = outsider_flood(h, 1)
    assert replies == 1


def test_a_permission_outage_does_not_silence_a_writer(h) -> None:
    """A 5xx refuses (fail closed) but is not remembered as a refusal."""
    h.fake.fail("/collaborators/writer/permission", times=10, status=500)
    h.post("/pullable rescan")
    h.post("/pullable rescan")
    assert len(bot_comments(h)) == 2 and not queued(h, "scan")
    h.fake.faults.clear()
    h.post("/pullable rescan")
    assert len(queued(h, "scan")) == 1


def test_help_and_unknown_commands_reply_with_the_help_text(h) -> None:
    h.post("/pullable help")
    h.post("I tried <img src=x onerror=alert(1)> @everyone\n\n/pullable frobnicate")
    first, second = bot_comments(h)
    assert commands.HELP in first and commands.HELP in second
    assert "did not recognise" in second
    assert "frobnicate" not in second and "@everyone" not in second and "onerror" not in second


def test_ignore_and_unignore(h) -> None:
    h.post("/pullable ignore bitnami/kubectl:1.31")
    text = bot_comments(h)[-1]
    assert "Ignored `docker.io/bitnami/kubectl`, every tag" in text
    assert "`/pullable unignore bitnami/kubectl`" in text
    (dash,) = [i for i in h.repo.issues.values() if i.title == dashboard.TITLE]
    assert dashboard.parse_state(dash.body) == {"docker.io/bitnami/kubectl"}
    assert len(queued(h, "scan")) == 1
    h.post("/pullable ignore docker.io/bitnami/kubectl")
    assert "already ignored" in bot_comments(h)[-1]
    h.post("/pullable unignore bitnami/kubectl")
    assert "`docker.io/bitnami/kubectl` is no longer ignored" in bot_comments(h)[-1]
    assert dashboard.parse_state(dash.body) == set()
    h.post("/pullable unignore bitnami/kubectl")
    assert "was not ignored" in bot_comments(h)[-1]


def test_replies_echo_no_user_text(h) -> None:
    h.post("Hey @team, <script>x</script> #12\n\n/pullable ignore nginx:1.25")
    text = bot_comments(h)[-1]
    assert "docker.io/library/nginx" in text
    for user_text in ("@team", "<script>", "#12", "1.25", "Hey"):
        assert user_text not in text


def test_explain_before_any_scan_queues_one(h) -> None:
    h.post("/pullable explain")
    assert "has not scanned this repository yet" in bot_comments(h)[-1]
    assert len(queued(h, "scan")) == 1


def test_explain_lists_the_last_inventory(h) -> None:
    from tests.jobs.test_dashboard import inventory

    doc = {"sha": "c" * 40, "ref": "main", "findings": [f.to_json() for f in inventory()], "errors": [],
           "config_error": None}  # fmt: skip
    h.queue.journal.store.put_doc(f"dashboard:{REPO}", doc)
    h.post("/pullable explain")
    text = bot_comments(h)[-1]
    assert "found 6 image reference(s)" in text
    for needle in ("`k8s/app.yaml:3`", "rule `bitnami-kubectl`", "alpine/kubectl:1.31.4", "auth-required",
                   "repo-missing", "2 other reference(s)"):  # fmt: skip
        assert needle in text, needle
    assert "@everyone" not in text and "<b>" not in text


def make_pr(h, fork: bool = False, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str]:
    from tests.support.fakegithub import Pull

    main = h.repo.refs["refs/heads/main"]
    _, head = h.fake.commit(h.repo, {"README.md": "# more\n"}, branch="feature", force_parent=main)
    issue = h.fake._new_issue(h.repo, "A change", "", "octocat")
    issue.pull = Pull("feature", "main", head, main)
    if fork:
        assert monkeypatch is not None
        real = h.fake._pull_json

        def as_fork(repo, issue):
            out = real(repo, issue)
            out["head"] = {**out["head"], "repo": {**out["head"]["repo"], "full_name": "mallory/demo"}}
            return out

        monkeypatch.setattr(h.fake, "_pull_json", as_fork)
    return issue.number, head


def test_rescan_on_a_pull_request_also_rechecks_it(h) -> None:
    number, head = make_pr(h)
    h.post("/pullable rescan", number=number)
    (scan,) = queued(h, "scan")
    (check,) = queued(h, "check")
    assert scan.payload["ref"] is None and check.payload["pulls"] == {
        str(number): {"sha": head, "base": "main"}
    }
    assert "check of this pull request runs again" in bot_comments(h, number)[-1]


def test_commands_on_fork_pull_requests_never_read_the_fork(h, monkeypatch: pytest.MonkeyPatch) -> None:
    """W20: the base repository's default branch is scanned; the fork's head is never read."""
    number, _ = make_pr(h, fork=True, monkeypatch=monkeypatch)
    h.fake.reset_log()
    h.post("/pullable rescan", number=number)
    (scan,) = queued(h, "scan")
    assert scan.payload["ref"] is None and not queued(h, "check")
    assert "comes from a fork" in bot_comments(h, number)[-1]
    h.post("/pullable explain", number=number)
    assert "comes from a fork" in bot_comments(h, number)[-1]
    read = {e.operation for e in h.fake.log}
    assert not read & {"pulls/list-files", "git/get-tree", "git/get-blob", "repos/get-content"}


def test_explain_on_a_pull_request_lists_its_changes(h) -> None:
    number, head = make_pr(h)
    h.post("/pullable explain", number=number)
    text = bot_comments(h, number)[-1]
    assert f"In the 1 file(s) this pull request changes, at `{head[:12]}`" in text
    assert "Nothing to report." in text


def test_explain_outside_a_table_shows_pipes_as_they_are(h) -> None:
    from tests.jobs.test_dashboard import inventory

    findings = [f.to_json() for f in inventory()]
    findings[0]["advice"] = "pin one of 1.31|1.32"
    doc = {"sha": "c" * 40, "ref": "main", "findings": findings, "errors": [],
           "config_error": "group: must be rule|all"}  # fmt: skip
    h.queue.journal.store.put_doc(f"dashboard:{REPO}", doc)
    h.post("/pullable explain")
    text = bot_comments(h)[-1]
    assert "must be rule|all" in text and "\\|" not in text, text
