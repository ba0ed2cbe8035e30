"""A stateful fake GitHub on loopback that keeps GitHub's REST contract.

Every request is matched to an operation of GitHub's own description (``@octokit/openapi``) and its
path, query and body are validated against it: an unknown operation answers 404, an invalid request
422, and both are recorded in :attr:`FakeGitHub.violations` (tests assert there are none). Responses
are checked too (types only) into :attr:`FakeGitHub.response_violations`.

State lives in memory: Apps (with real RSA keys: JWTs are verified), installations, scoped
installation tokens, repositories with real git objects (SHA-1 of git's own encoding), refs,
pull requests, issues, comments, reactions, labels, check runs and collaborators.

Test hooks: :meth:`FakeGitHub.fail` (N failures of a path with any status and headers, before or
after the write happens), :attr:`FakeGitHub.log` / :meth:`FakeGitHub.count` (API budget),
``tree_entry_limit`` / ``compare_file_limit`` (truncation), ``clock`` (token expiry),
``archive_tamper`` (adds members to the tarballs served, as a hostile or broken archive would).

Archives: ``GET /repos/{owner}/{repo}/tarball/{ref}`` answers 302 to a one-time URL outside the
API (``/_codeload/...``, GitHub's ``codeload.github.com``), which serves the commit's files as a
gzipped tar under one top folder (``{owner}-{repo}-{sha7}/``), symlinks as symlinks, submodules
left out; it takes no credentials (a request that sends any is recorded as a violation) and its
download is logged with the operation ``codeload`` (it is not a REST call: no rate limit).
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import io
import itertools
import json
import re
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.support import fakegithub_webhooks as webhooks
from tests.support.fakegithub_spec import Contract, Operation

ZERO_SHA = "0" * 40
DOCS = "https://docs.github.com/rest"
# What Pullable's app.yml asks for (issue 5 §6).
DEFAULT_PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
    "workflows": "write",
}
NOT_ACCESSIBLE = (
    "There is at least one repository that does not exist or is not accessible to the parent installation."
)
_LEVEL = {"read": 1, "write": 2, "admin": 3}


GIT_DATA_OPERATIONS = ("git/", "repos/get-content", "repos/get-branch", "repos/get-commit",
                       "repos/compare-commits", "repos/list-commits")  # fmt: skip


class HttpError(Exception):
    def __init__(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, dict(headers or {}), extra


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def git_hash(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


@functools.cache
def _pooled_key(slot: int) -> rsa.RSAPrivateKey:
    """RSA keys are slow to make; tests share a few (``slot`` keeps distinct Apps distinct)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_key_pair(slot: int | None = None) -> tuple[str, str]:
    """(private PEM, public PEM); a fresh key when ``slot`` is None."""
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if slot is None else _pooled_key(slot)
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


# ---------------------------------------------------------------------------------------------- state


@dataclass
class FakeApp:
    id: int
    slug: str
    name: str
    client_id: str
    private_key: str  # PEM, what the App's operator would store
    public_key: str
    webhook_secret: str
    owner: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class FakeInstallation:
    id: int
    app: FakeApp
    account: str
    permissions: dict[str, str]
    repository_selection: str = "all"  # or "selected"
    repository_ids: set[int] = field(default_factory=set)  # when "selected"
    events: list[str] = field(default_factory=lambda: ["push", "issue_comment", "pull_request"])
    suspended: bool = False


@dataclass
class FakeToken:
    token: str
    installation: FakeInstallation
    expires_at: datetime
    permissions: dict[str, str]
    repository_ids: set[int] | None  # None: every repository of the installation
    revoked: bool = False


@dataclass
class Commit:
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]
    committer: dict[str, str]
    login: str  # the GitHub user the commit is attributed to
    verified: bool


@dataclass
class Issue:
    number: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    pull: Pull | None = None


@dataclass
class Pull:
    head: str
    base: str
    head_sha: str
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = True
    merged: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    reactions: list[tuple[int, str, str]] = field(default_factory=list)  # (id, user, content)


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    objects: dict[str, tuple[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> sha
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower(name) -> label
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role name
    reactions: dict[int, list[tuple[int, str, str]]] = field(default_factory=dict)  # issue -> ...
    created_at: datetime = field(default_factory=_now)
    archived: bool = False  # read-only: every write is refused with 403

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # git objects --------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        sha = git_hash("blob", data)
        self.objects[sha] = ("blob", data)
        return sha

    def put_tree(self, entries: Mapping[str, tuple[str, str, str]]) -> str:
        """``entries``: name -> (mode, type, sha), stored and hashed as git does."""

        def key(item: tuple[str, tuple[str, str, str]]) -> bytes:
            return (item[0] + ("/" if item[1][1] == "tree" else "")).encode()

        raw = b"".join(
            f"{'40000' if typ == 'tree' else mode} {name}".encode() + b"\0" + bytes.fromhex(sha)
            for name, (mode, typ, sha) in sorted(entries.items(), key=key)
        )
        sha = git_hash("tree", raw)
        self.objects[sha] = ("tree", dict(sorted(entries.items(), key=key)))
        return sha

    def put_commit(self, commit: Commit) -> str:
        lines = [f"tree {commit.tree}", *(f"parent {p}" for p in commit.parents)]
        for role in ("author", "committer"):
            who = getattr(commit, role)
            stamp = int(datetime.strptime(who["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
            lines.append(f"{role} {who['name']} <{who['email']}> {stamp} +0000")
        raw = ("\n".join(lines) + "\n\n" + commit.message).encode()
        sha = git_hash("commit", raw)
        self.objects[sha] = ("commit", commit)
        return sha

    def obj(self, sha: str, kind: str) -> Any:
        got = self.objects.get(sha)
        if got is None or got[0] != kind:
            raise HttpError(404, "Not Found")
        return got[1]

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str, str]]:
        """path -> (mode, type, sha) of every non-tree entry under ``tree_sha``."""
        out: dict[str, tuple[str, str, str]] = {}
        for name, (mode, typ, sha) in self.obj(tree_sha, "tree").items():
            if typ == "tree":
                out.update(self.flatten(sha, f"{prefix}{name}/"))
            else:
                out[prefix + name] = (mode, typ, sha)
        return out

    def build(self, flat: Mapping[str, tuple[str, str, str]]) -> str:
        here: dict[str, tuple[str, str, str]] = {}
        sub: dict[str, dict[str, tuple[str, str, str]]] = {}
        for path, entry in flat.items():
            head, sep, rest = path.partition("/")
            if sep:
                sub.setdefault(head, {})[rest] = entry
            else:
                here[head] = entry
        for name, children in sub.items():
            here[name] = ("040000", "tree", self.build(children))
        return self.put_tree(here)

    def commit_tree(self, sha: str) -> str:
        return self.obj(sha, "commit").tree

    def resolve(self, ref: str) -> str | None:
        """A commit sha for a sha, branch, tag or full ref name."""
        if re.fullmatch(r"[0-9a-f]{40}", ref) and ref in self.objects:
            return ref
        for cand in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if cand in self.refs:
                return self.refs[cand]
        if re.fullmatch(r"[0-9a-f]{7,39}", ref):
            hits = [s for s, (k, _) in self.objects.items() if k == "commit" and s.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
        return None

    def ancestors(self, sha: str) -> list[str]:
        """``sha`` and every commit reachable from it, nearest first."""
        seen: dict[str, None] = {}
        todo = [sha]
        while todo:
            s = todo.pop(0)
            if s in seen:
                continue
            seen[s] = None
            todo.extend(self.obj(s, "commit").parents)
        return list(seen)


@dataclass
class LogEntry:
    method: str
    path: str
    query: str
    status: int
    operation: str | None
    auth: str  # "jwt", "token", "none", "bad"
    installation: int | None
    body: Any = None


@dataclass
class Violation:
    method: str
    path: str
    operation: str | None
    errors: list[str]


@dataclass
class Fault:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: dict[str, Any]
    after: bool  # apply the request, then answer with the failure (a write that "failed" but happened)


@dataclass
class Hold:
    """A request the fake keeps waiting (see :meth:`FakeGitHub.hold`)."""

    method: str | None
    pattern: re.Pattern[str]
    apply: bool
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    used: bool = False


@dataclass
class Push:
    sha: str
    before: str
    ref: str
    payload: dict[str, Any]


@dataclass
class Ctx:
    method: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    headers: Mapping[str, str]
    token: FakeToken | None
    app: FakeApp | None
    repo: FakeRepo | None = None

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    @property
    def actor(self) -> str:
        if self.token is not None:
            return self.token.installation.app.bot_login
        raise HttpError(401, "Requires authentication")


# Operation -> (permission, needs write) for installation tokens. ``None``: any valid token.
PERMISSION: dict[str, tuple[str, bool] | None] = {
    "apps/list-repos-accessible-to-installation": None,
    "apps/revoke-installation-access-token": None,
    "rate-limit/get": None,
    "repos/get": ("metadata", False),
    "repos/get-collaborator-permission-level": ("metadata", False),
    "repos/get-content": ("contents", False),
    "repos/get-branch": ("contents", False),
    "repos/get-commit": ("contents", False),
    "repos/compare-commits-with-basehead": ("contents", False),
    "repos/compare-commits": ("contents", False),
    "git/get-tree": ("contents", False),
    "git/get-blob": ("contents", False),
    "git/get-commit": ("contents", False),
    "git/get-ref": ("contents", False),
    "git/list-matching-refs": ("contents", False),
    "git/create-tree": ("contents", True),
    "git/create-blob": ("contents", True),
    "git/create-commit": ("contents", True),
    "git/create-ref": ("contents", True),
    "git/update-ref": ("contents", True),
    "git/delete-ref": ("contents", True),
    "repos/download-tarball-archive": ("contents", False),
    "pulls/list": ("pull_requests", False),
    "pulls/get": ("pull_requests", False),
    "pulls/list-commits": ("pull_requests", False),
    "pulls/list-files": ("pull_requests", False),
    "pulls/create": ("pull_requests", True),
    "pulls/update": ("pull_requests", True),
    "issues/list-for-repo": ("issues", False),
    "issues/get": ("issues", False),
    "issues/create": ("issues", True),
    "issues/update": ("issues", True),
    "issues/list-comments": ("issues", False),
    "issues/get-comment": ("issues", False),
    "issues/create-comment": ("issues", True),
    "issues/update-comment": ("issues", True),
    "reactions/list-for-issue-comment": ("issues", False),
    "reactions/create-for-issue-comment": ("issues", True),
    "reactions/list-for-issue": ("issues", False),
    "reactions/create-for-issue": ("issues", True),
    "issues/list-labels-for-repo": ("issues", False),
    "issues/get-label": ("issues", False),
    "issues/create-label": ("issues", True),
    "issues/list-labels-on-issue": ("issues", False),
    "issues/add-labels": ("issues", True),
    "issues/remove-label": ("issues", True),
    "checks/create": ("checks", True),
    "checks/update": ("checks", True),
    "checks/get": ("checks", False),
    "checks/list-for-ref": ("checks", False),
    "checks/list-annotations": ("checks", False),
}
JWT_OPERATIONS = frozenset(
    {
        "apps/get-authenticated",
        "apps/list-installations",
        "apps/get-installation",
        "apps/create-installation-access-token",
        "apps/get-repo-installation",
    }
)
ETAG_OPERATIONS = frozenset(
    op for op in PERMISSION if op.split("/")[1].startswith(("get", "list", "compare"))
)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The fake's own :attr:`FakeGitHub.log` records requests; stderr stays readable."""


@functools.cache
def contract() -> Contract:
    return Contract([*PERMISSION, *JWT_OPERATIONS])


class FakeGitHub:
    """The fake: state, the HTTP server around it, and helpers tests use to arrange the world."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self.contract = contract()
        self.lock = threading.RLock()
        self.apps: dict[int, FakeApp] = {}
        self.installations: dict[int, FakeInstallation] = {}
        self.tokens: dict[str, FakeToken] = {}
        self.repos: dict[str, FakeRepo] = {}  # lower(full_name) -> repo
        self.users: dict[str, dict[str, Any]] = {}
        self.log: list[LogEntry] = []
        self.violations: list[Violation] = []
        self.response_violations: list[Violation] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.rate_used: dict[int, int] = {}
        self.rate_limit = 5000
        self.rate_reset = int(time.time()) + 3600
        self.tree_entry_limit = 100_000  # recursive listings only, as GitHub
        self.compare_file_limit = 300
        self.compare_commit_limit = 250
        self.clock = timedelta(0)  # added to the real clock (token expiry tests)
        self.token_lifetime = timedelta(hours=1)  # GitHub's; shorten to mint nearly expired tokens
        self._ids = itertools.count(1000)
        self.archives: dict[str, tuple[str, str]] = {}  # one-time codeload token -> (repo, commit)
        self.archive_tamper: Callable[[tarfile.TarFile, str], None] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ----------------------------------------------------------------------------- server lifecycle
    def start(self) -> FakeGitHub:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}{self.prefix}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def now(self) -> datetime:
        return _now() + self.clock

    def url(self, path: str) -> str:
        return self.base_url + path

    # ----------------------------------------------------------------------------- arranging state
    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        with self.lock:
            if login not in self.users:
                uid = next(self._ids)
                self.users[login] = {
                    "login": login,
                    "id": uid,
                    "node_id": base64.b64encode(f"04:User{uid}".encode()).decode(),
                    "avatar_url": f"https://avatars.example.invalid/u/{uid}",
                    "gravatar_id": "",
                    "url": self.url(f"/users/{login}"),
                    "html_url": f"https://github.com/{login}",
                    "type": kind,
                    "site_admin": False,
                }
            return self.users[login]

    def create_app(
        self, slug: str = "pullable", owner: str = "pullable-dev", key_slot: int | None = 0
    ) -> FakeApp:
        """An App with an RSA key pair (pooled by ``key_slot``; None for a fresh key)."""
        private, public = make_key_pair(key_slot)
        with self.lock:
            app_id = next(self._ids)
            app = FakeApp(
                id=app_id,
                slug=slug,
                name=slug.capitalize(),
                client_id=f"Iv23li{app_id:08d}",
                private_key=private,
                public_key=public,
                webhook_secret=secrets.token_hex(20),
                owner=owner,
            )
            self.apps[app_id] = app
            self.user(app.bot_login, "Bot")
            self.user(owner, "Organization")
        return app

    def create_installation(
        self,
        app: FakeApp,
        account: str = "octo-org",
        permissions: Mapping[str, str] | None = None,
        repositories: list[FakeRepo] | None = None,
    ) -> FakeInstallation:
        """``repositories`` None installs on all of the account's repositories."""
        with self.lock:
            inst = FakeInstallation(
                id=next(self._ids),
                app=app,
                account=account,
                permissions=dict(DEFAULT_PERMISSIONS if permissions is None else permissions),
                repository_selection="all" if repositories is None else "selected",
                repository_ids={r.id for r in repositories or ()},
            )
            self.user(account, "Organization")
            self.installations[inst.id] = inst
        return inst

    def create_repo(
        self,
        full_name: str,
        files: Mapping[str, str | bytes] | Path | None = None,
        *,
        default_branch: str = "main",
        private: bool = True,
        installation: FakeInstallation | None = None,
        message: str = "Initial commit",
        author: str | None = None,
        empty: bool = False,
    ) -> FakeRepo:
        """A repository whose default branch holds ``files`` (a dict or a directory); ``empty``:
        no commit at all, as GitHub creates a repository without a README."""
        owner, name = full_name.split("/")
        with self.lock:
            repo = FakeRepo(
                id=next(self._ids), owner=owner, name=name, private=private, default_branch=default_branch
            )
            self.repos[full_name.lower()] = repo
            self.user(owner, "Organization")
            if installation is not None and installation.repository_selection == "selected":
                installation.repository_ids.add(repo.id)
            if isinstance(files, Path):
                files = {
                    p.relative_to(files).as_posix(): p.read_bytes()
                    for p in sorted(files.rglob("*"))
                    if p.is_file() and ".git" not in p.relative_to(files).parts
                }
            if empty:
                return repo
            flat = {p: ("100644", "blob", repo.put_blob(_bytes(d))) for p, d in (files or {}).items()}
            tree = repo.build(flat)
            sha = repo.put_commit(self._human_commit(tree, [], message, author or owner))
            repo.refs[f"refs/heads/{default_branch}"] = sha
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def _human_commit(self, tree: str, parents: list[str], message: str, login: str) -> Commit:
        who = {"name": login, "email": f"{login}@users.noreply.example", "date": _iso(self.now())}
        self.user(login)
        return Commit(tree, parents, message, who, dict(who), login, verified=False)

    def commit(
        self,
        repo: FakeRepo,
        changes: Mapping[str, str | bytes | None],
        branch: str | None = None,
        message: str = "Update files",
        author: str = "octocat",
        force_parent: str | None = None,
    ) -> tuple[str, str]:
        """A human commit on ``branch`` (``None`` deletes a path). Returns (before, after)."""
        with self.lock:
            ref = f"refs/heads/{branch or repo.default_branch}"
            before = repo.refs.get(ref, ZERO_SHA)
            parent = force_parent or (before if before != ZERO_SHA else None)
            flat = repo.flatten(repo.commit_tree(parent)) if parent else {}
            for path, data in changes.items():
                if data is None:
                    flat.pop(path, None)
                else:
                    flat[path] = ("100644", "blob", repo.put_blob(_bytes(data)))
            tree = repo.build(flat)
            sha = repo.put_commit(self._human_commit(tree, [parent] if parent else [], message, author))
            repo.refs[ref] = sha
        return before, sha

    def push(
        self,
        repo: FakeRepo,
        changes: Mapping[str, str | bytes | None],
        branch: str | None = None,
        message: str = "Update files",
        author: str = "octocat",
        installation: FakeInstallation | None = None,
        commits: int = 1,
    ) -> Push:
        """Commit ``changes`` (split over ``commits`` commits) and build the ``push`` payload
        GitHub would send: a real example patched to this repository, commits and installation."""
        items = list(changes.items())
        chunks = [dict(items[i::commits]) for i in range(commits)]
        ref = f"refs/heads/{branch or repo.default_branch}"
        first = repo.refs.get(ref, ZERO_SHA)
        shas = [self.commit(repo, chunk, branch, message, author)[1] for chunk in chunks]
        with self.lock:
            payload = self.push_payload(repo, ref, first, shas[-1], installation)
        return Push(shas[-1], first, ref, payload)

    def push_payload(
        self, repo: FakeRepo, ref: str, before: str, after: str, installation: FakeInstallation | None = None
    ) -> dict[str, Any]:
        """The ``push`` payload for moving ``ref`` from ``before`` to ``after``."""
        with self.lock:
            payload = webhooks.example("push", where=lambda e: e["ref"].startswith("refs/heads/"))
            webhooks.patch_repository(payload, self._webhook_repo(repo))
            if installation is not None:
                webhooks.patch_installation(payload, installation.id)
            new = [s for s in repo.ancestors(after) if before == ZERO_SHA or s not in repo.ancestors(before)]
            new.reverse()
            forced = before != ZERO_SHA and before not in repo.ancestors(after)
            commits = [self._push_commit(repo, s) for s in new[-2048:]]
            pusher = repo.obj(after, "commit").login
            payload.update(
                ref=ref,
                before=before,
                after=after,
                created=before == ZERO_SHA,
                deleted=False,
                forced=forced,
                base_ref=None,
                compare=f"https://github.com/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
                commits=commits,
                head_commit=commits[-1] if commits else None,
                pusher={"name": pusher, "email": f"{pusher}@users.noreply.example"},
                sender={**payload.get("sender", {}), **self.user(pusher)},
            )
        return payload

    def _push_commit(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        c = repo.obj(sha, "commit")
        old = repo.flatten(repo.commit_tree(c.parents[0])) if c.parents else {}
        new = repo.flatten(c.tree)
        return {
            "id": sha,
            "tree_id": c.tree,
            "distinct": True,
            "message": c.message,
            "timestamp": c.committer["date"],
            "url": f"https://github.com/{repo.full_name}/commit/{sha}",
            "author": {"name": c.author["name"], "email": c.author["email"], "username": c.login},
            "committer": {"name": c.committer["name"], "email": c.committer["email"], "username": c.login},
            "added": sorted(p for p in new if p not in old),
            "removed": sorted(p for p in old if p not in new),
            "modified": sorted(p for p in new if p in old and old[p] != new[p]),
        }

    def add_collaborator(self, repo: FakeRepo, login: str, role: str = "write") -> None:
        """``role``: read, triage, write, maintain or admin."""
        with self.lock:
            self.user(login)
            repo.collaborators[login] = role

    def comment(
        self,
        repo: FakeRepo,
        number: int,
        body: str,
        user: str = "octocat",
        installation: FakeInstallation | None = None,
    ) -> dict[str, Any]:
        """A person comments on issue/PR ``number``; returns the ``issue_comment`` payload."""
        with self.lock:
            issue = repo.issues[number]
            c = self._add_comment(repo, issue, body, user)
            payload = webhooks.example("issue_comment", "created")
            webhooks.patch_repository(payload, self._webhook_repo(repo))
            if installation is not None:
                webhooks.patch_installation(payload, installation.id)
            payload["issue"] = self._issue_json(repo, issue)
            payload["comment"] = self._comment_json(repo, c)
            payload["sender"] = self.user(user)
        return payload

    def pull_request_payload(
        self,
        repo: FakeRepo,
        number: int,
        action: str,
        installation: FakeInstallation | None = None,
        sender: str | None = None,
    ) -> dict[str, Any]:
        """The ``pull_request`` payload for PR ``number`` as it is now."""
        with self.lock:
            issue = repo.issues[number]
            try:
                payload = webhooks.example("pull_request", action)
            except LookupError:
                payload = webhooks.example("pull_request", "opened")
                payload["action"] = action
            webhooks.patch_repository(payload, self._webhook_repo(repo))
            if installation is not None:
                webhooks.patch_installation(payload, installation.id)
            payload["number"] = number
            payload["pull_request"] = {**payload["pull_request"], **self._pull_json(repo, issue)}
            payload["sender"] = self.user(sender or issue.user)
        return payload

    def installation_payload(self, inst: FakeInstallation, action: str = "created") -> dict[str, Any]:
        """``installation`` (created, deleted, ...) for ``inst`` with its repositories."""
        with self.lock:
            payload = webhooks.example("installation", action)
            payload["installation"] = {**payload["installation"], **self._installation_json(inst)}
            payload["repositories"] = [
                {
                    "id": r.id,
                    "node_id": f"R_{r.id}",
                    "name": r.name,
                    "full_name": r.full_name,
                    "private": r.private,
                }
                for r in self._installation_repos(inst)
            ]
            payload["sender"] = self.user(inst.account)
        return payload

    def installation_repositories_payload(
        self, inst: FakeInstallation, added: list[FakeRepo]
    ) -> dict[str, Any]:
        with self.lock:
            payload = webhooks.example("installation_repositories", "added")
            payload["installation"] = {**payload["installation"], **self._installation_json(inst)}
            payload["repository_selection"] = inst.repository_selection
            payload["repositories_added"] = [
                {
                    "id": r.id,
                    "node_id": f"R_{r.id}",
                    "name": r.name,
                    "full_name": r.full_name,
                    "private": r.private,
                }
                for r in added
            ]
            payload["repositories_removed"] = []
        return payload

    def delivery(
        self, event: str, payload: dict[str, Any], app: FakeApp, delivery_id: str | None = None
    ) -> webhooks.Delivery:
        """Sign ``payload`` with ``app``'s webhook secret, as GitHub delivers it."""
        return webhooks.deliver(event, payload, app.webhook_secret, delivery_id)

    def merge_pull(self, repo: FakeRepo, number: int, user: str = "octocat") -> str:
        """Merge PR ``number`` (a merge commit on the base branch); returns the merge commit."""
        with self.lock:
            issue = repo.issues[number]
            pr = issue.pull
            assert pr is not None and issue.state == "open"
            head = repo.refs[f"refs/heads/{pr.head}"]
            base = repo.refs[f"refs/heads/{pr.base}"]
            mb = self._merge_base(repo, base, head)
            merged = repo.flatten(repo.commit_tree(base))
            at_mb = repo.flatten(repo.commit_tree(mb)) if mb else {}
            at_head = repo.flatten(repo.commit_tree(head))
            for path in set(at_mb) | set(at_head):
                if at_mb.get(path) != at_head.get(path):
                    if path in at_head:
                        merged[path] = at_head[path]
                    else:
                        merged.pop(path, None)
            msg = f"Merge pull request #{number} from {repo.owner}/{pr.head}"
            sha = repo.put_commit(self._human_commit(repo.build(merged), [base, head], msg, user))
            repo.refs[f"refs/heads/{pr.base}"] = sha
            pr.merged, pr.merged_at, pr.merge_commit_sha, pr.head_sha = True, self.now(), sha, head
            issue.state, issue.closed_at, issue.updated_at = "closed", self.now(), self.now()
        return sha

    def close_issue(self, repo: FakeRepo, number: int) -> None:
        """A person closes issue/PR ``number`` (a PR closed without merging)."""
        with self.lock:
            issue = repo.issues[number]
            if issue.pull is not None:
                issue.pull.head_sha = self._pull_head(repo, issue.pull)
            issue.state, issue.closed_at, issue.updated_at = "closed", self.now(), self.now()

    def file(self, repo: FakeRepo, path: str, ref: str | None = None) -> str | None:
        """The text of ``path`` at ``ref`` (default branch by default), None if absent."""
        with self.lock:
            sha = repo.resolve(ref or repo.default_branch)
            if sha is None:
                return None
            entry = repo.flatten(repo.commit_tree(sha)).get(path)
            return None if entry is None else repo.obj(entry[2], "blob").decode()

    def pulls(self, repo: FakeRepo, state: str = "open") -> list[Issue]:
        return [i for i in repo.issues.values() if i.pull is not None and state in ("all", i.state)]

    # ----------------------------------------------------------------------------- test hooks
    def fail(
        self,
        path: str,
        times: int = 1,
        status: int = 502,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
        after: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests whose path matches ``path`` (a regex searched in the
        path without the prefix) with ``status``; ``after`` applies the request first."""
        body = {
            "message": message or {502: "Server Error", 429: "Too Many Requests"}.get(status, "Error"),
            "documentation_url": DOCS,
            "status": str(status),
        }
        fault = Fault(method, re.compile(path), status, times, dict(headers or {}), body, after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def hold(self, path: str, method: str | None = None, apply: bool = False) -> Hold:
        """Keep the next request matching ``path`` (a regex searched in the path without the
        prefix) waiting until ``hold.release`` is set; ``hold.reached`` is set when it arrives.
        ``apply``: GitHub has done it but the answer is late (a client killed now never learns
        it happened); otherwise it never reaches GitHub (answered 503 unapplied when released).
        For killing a worker at a known point of a job."""
        h = Hold(method, re.compile(path), apply)
        with self.lock:
            self.holds.append(h)
        return h

    def _take_hold(self, method: str, path: str) -> Hold | None:
        path = path[len(self.prefix) :] if path.startswith(self.prefix + "/") else path
        with self.lock:
            for h in self.holds:
                if not h.used and (h.method is None or h.method == method) and h.pattern.search(path):
                    h.used = True
                    return h
        return None

    def fail_secondary_rate_limit(
        self, path: str, times: int = 1, retry_after: int = 1, method: str | None = None, after: bool = False
    ) -> Fault:
        msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        return self.fail(path, times, 403, method, {"Retry-After": str(retry_after)}, msg, after)

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        operation: str | None = None,
        include_304: bool = False,
    ) -> int:
        """Requests logged (304s left out unless asked: they cost no rate limit)."""
        with self.lock:
            return sum(
                1
                for e in self.log
                if (method is None or e.method == method)
                and (path is None or re.search(path, e.path))
                and (operation is None or e.operation == operation)
                and (include_304 or e.status != 304)
            )

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    def set_rate_remaining(self, inst: FakeInstallation, remaining: int) -> None:
        with self.lock:
            self.rate_used[inst.id] = self.rate_limit - remaining

    def assert_clean(self) -> None:
        """No request broke GitHub's contract and no response of the fake did."""
        assert not self.violations, self.violations
        assert not self.response_violations, self.response_violations

    # ----------------------------------------------------------------------------- HTTP plumbing
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        hold = self._take_hold(request.method, request.path) if self.holds else None
        if hold is not None and not hold.apply:
            hold.reached.set()
            hold.release.wait(120)
            return Response(b"", 503)(environ, start_response)
        with self.lock:
            response = self._handle(request)
        if hold is not None:
            hold.reached.set()
            hold.release.wait(120)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        path = request.path
        method = request.method
        entry = LogEntry(method, path, request.query_string.decode(), 0, None, "none", None)
        self.log.append(entry)
        if path.startswith("/_codeload/"):
            return self._codeload(request, entry)
        if not path.startswith(self.prefix + "/"):
            return self._error(entry, HttpError(404, "Not Found"))
        path = path[len(self.prefix) :]
        entry.path = path
        op, params, _ = self.contract.match(method, path)
        if op is None:
            self.violations.append(
                Violation(method, path, None, ["no such operation in GitHub's description"])
            )
            return self._error(entry, HttpError(404, "Not Found"))
        entry.operation = op.operation_id
        body: Any = None
        raw = request.get_data()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.violations.append(Violation(method, path, op.operation_id, ["body is not JSON"]))
                return self._error(entry, HttpError(400, "Problems parsing JSON"))
        entry.body = body
        query = {k: request.args.getlist(k) for k in request.args}
        checked = body
        if op.operation_id in ("issues/add-labels", "issues/set-labels") and isinstance(body, list):
            # Erratum: the operation's prose allows "an array of labels directly" (PyGithub's
            # add_to_labels sends one) while its schema lists only the object form.
            checked = {"labels": body}
        errors = self.contract.check_request(op, params, query, checked)
        if errors:
            self.violations.append(Violation(method, path, op.operation_id, errors))
            return self._error(entry, HttpError(422, "Invalid request.\n\n" + "\n".join(errors)))
        try:
            ctx = self._authorise(request, op, params, query, body, entry)
            self._repo_state(op, ctx)
            fault = self._fault(method, path)
            if fault is not None and not fault.after:
                raise HttpError(fault.status, fault.body["message"], fault.headers)
            status, payload, headers = self._dispatch(op, ctx)
            if fault is not None:
                raise HttpError(fault.status, fault.body["message"], fault.headers)
        except HttpError as exc:
            return self._error(entry, exc)
        if 200 <= status < 300 and payload is not None and not isinstance(payload, bytes):
            problems = self.contract.check_response(op, status, payload)
            if problems:
                self.response_violations.append(Violation(method, path, op.operation_id, problems))
        data = (
            payload
            if isinstance(payload, bytes)
            else (b"" if payload is None else json.dumps(payload).encode())
        )
        headers.update(self._rate_headers(entry))
        if method == "GET" and op.operation_id in ETAG_OPERATIONS and status == 200:
            etag = 'W/"' + hashlib.sha256(data).hexdigest()[:40] + '"'
            headers["ETag"] = etag
            if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
                entry.status = 304
                self._uncount(entry)
                return Response(b"", 304, headers={**headers, **self._rate_headers(entry)})
        entry.status = status
        ctype = (
            "application/vnd.github.raw" if isinstance(payload, bytes) else "application/json; charset=utf-8"
        )
        return Response(data, status, headers=headers, content_type=ctype if data else None)

    def _codeload(self, request: Request, entry: LogEntry) -> Response:
        """The archive a tarball redirect points at (see the module docstring)."""
        entry.operation = "codeload"
        if request.headers.get("Authorization"):
            self.violations.append(Violation("GET", entry.path, "codeload", ["credentials sent to codeload"]))
        token = request.args.get("token", "")
        with self.lock:
            found = self.archives.pop(token, None)
        if request.method != "GET" or found is None:
            return self._error(entry, HttpError(404, "Not Found"))
        repo, sha = self.repos[found[0].lower()], found[1]
        top = f"{repo.owner}-{repo.name}-{sha[:7]}/"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
            tf.pax_headers = {"comment": sha}  # as git archive writes it
            for path, (mode, kind, obj) in sorted(repo.flatten(repo.commit_tree(sha)).items()):
                if kind != "blob":
                    continue  # submodules are not in GitHub's archives
                data = repo.obj(obj, "blob")
                info = tarfile.TarInfo(top + path)
                if mode == "120000":
                    info.type, info.linkname = tarfile.SYMTYPE, data.decode("utf-8", "replace")
                    tf.addfile(info)
                    continue
                info.size, info.mode = len(data), 0o755 if mode == "100755" else 0o644
                tf.addfile(info, io.BytesIO(data))
            if self.archive_tamper is not None:
                self.archive_tamper(tf, top)
        entry.status = 200
        return Response(buf.getvalue(), 200, content_type="application/x-gzip")

    def _repo_state(self, op: Operation, ctx: Ctx) -> None:
        """What GitHub answers whatever the request: an archived repository refuses writes, an
        empty one (no commit yet) answers 409 to everything about git data."""
        repo = ctx.repo
        if repo is None:
            return
        if repo.archived and op.method != "GET":
            raise HttpError(403, "Repository was archived so is read-only.")
        if not repo.refs and op.operation_id.startswith(GIT_DATA_OPERATIONS):
            raise HttpError(409, "Git Repository is empty.")

    def _fault(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.times > 0 and (f.method is None or f.method == method) and f.pattern.search(path):
                f.times -= 1
                return f
        return None

    def _error(self, entry: LogEntry, exc: HttpError) -> Response:
        entry.status = exc.status
        body = {"message": exc.message, "documentation_url": DOCS, "status": str(exc.status), **exc.extra}
        headers = {**exc.headers, **self._rate_headers(entry)}
        return Response(
            json.dumps(body), exc.status, headers=headers, content_type="application/json; charset=utf-8"
        )

    def _rate_headers(self, entry: LogEntry) -> dict[str, str]:
        if entry.installation is None:
            return {}
        used = self.rate_used.get(entry.installation, 0)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - used)),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(self.rate_reset),
            "X-RateLimit-Resource": "core",
        }

    def _uncount(self, entry: LogEntry) -> None:
        if entry.installation is not None and entry.operation != "rate-limit/get":
            self.rate_used[entry.installation] -= 1

    def _authorise(
        self,
        request: Request,
        op: Operation,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        entry: LogEntry,
    ) -> Ctx:
        header = request.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        ctx = Ctx(op.method, params, query, body, request.headers, None, None)
        if header and scheme.lower() not in ("bearer", "token"):
            entry.auth = "bad"
            raise HttpError(401, "Bad credentials")
        if cred and not cred.startswith("ghs_") and cred.count(".") == 2:
            entry.auth = "jwt"
            ctx.app = self._verify_jwt(cred)
        elif cred:
            entry.auth = "token"
            tok = self.tokens.get(cred)
            if tok is None or tok.revoked or tok.expires_at <= self.now():
                raise HttpError(401, "Bad credentials")
            ctx.token = tok
            entry.installation = tok.installation.id
            if op.operation_id != "rate-limit/get":
                used = self.rate_used.get(tok.installation.id, 0)
                if used >= self.rate_limit:
                    raise HttpError(
                        403, f"API rate limit exceeded for installation ID {tok.installation.id}."
                    )
                self.rate_used[tok.installation.id] = used + 1
        if op.operation_id in JWT_OPERATIONS:
            if ctx.app is None:
                raise HttpError(401, "A JSON web token could not be decoded")
        elif ctx.app is not None:
            raise HttpError(403, "Resource not accessible by integration")
        if "owner" in params and "repo" in params:
            ctx.repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
            if ctx.repo is None or not self._can_see(ctx, ctx.repo):
                raise HttpError(404, "Not Found")
        need = PERMISSION.get(op.operation_id)
        if ctx.token is None and ctx.app is None:
            if (
                op.method != "GET"
                or ctx.repo is None
                or ctx.repo.private
                or op.operation_id in ("apps/list-repos-accessible-to-installation",)
            ):
                raise HttpError(401, "Requires authentication")
        elif ctx.token is not None and need is not None:
            perm, write = need
            have = _LEVEL.get(ctx.token.permissions.get(perm, ""), 0)
            if perm == "issues" and ctx.repo is not None:
                number = params.get("issue_number")
                if "comment_id" in params:
                    c = ctx.repo.comments.get(int(params["comment_id"]))
                    number = None if c is None else str(c.issue)
                issue = ctx.repo.issues.get(int(number)) if number else None
                if issue is not None and issue.pull is not None:
                    have = max(have, _LEVEL.get(ctx.token.permissions.get("pull_requests", ""), 0))
            if have < (2 if write else 1):
                raise HttpError(403, "Resource not accessible by integration")
        return ctx

    def _can_see(self, ctx: Ctx, repo: FakeRepo) -> bool:
        if ctx.app is not None:
            return True
        if ctx.token is None:
            return not repo.private
        tok = ctx.token
        if tok.repository_ids is not None and repo.id not in tok.repository_ids:
            return False
        return repo in self._installation_repos(tok.installation)

    def _verify_jwt(self, token: str) -> FakeApp:
        bad = HttpError(401, "A JSON web token could not be decoded")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise bad from None
        if header.get("alg") != "RS256":
            raise bad
        iss = str(claims.get("iss"))
        app = next((a for a in self.apps.values() if iss in (str(a.id), a.client_id)), None)
        if app is None:
            raise HttpError(401, f"Integration not found: {iss}")
        now = self.now().timestamp()
        try:
            claims = jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise bad from None
        if claims["exp"] <= now:
            raise HttpError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time "
                "at which the assertion expires",
            )
        if claims["exp"] - now > 600 + 30:
            raise HttpError(401, "'Expiration time' claim ('exp') is too far in the future")
        if claims["iat"] > now + 30:
            raise HttpError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
                "was issued",
            )
        return app

    def _dispatch(self, op: Operation, ctx: Ctx) -> tuple[int, Any, dict[str, str]]:
        handler = getattr(self, "op_" + re.sub(r"[^a-z0-9]", "_", op.operation_id))
        result = handler(ctx)
        if isinstance(result, tuple) and len(result) == 3:
            return result
        if isinstance(result, tuple):
            return result[0], result[1], {}
        return 200, result, {}

    def _page(self, ctx: Ctx, items: list[Any], path: str) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(ctx.q("per_page", "30") or 30), 100)
        page = max(int(ctx.q("page", "1") or 1), 1)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        base = {k: v[0] for k, v in ctx.query.items() if k != "page"}
        if page < last:
            links.append(f'<{self.url(path)}?{urlencode({**base, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url(path)}?{urlencode({**base, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{self.url(path)}?{urlencode({**base, "page": 1})}>; rel="first"')
            links.append(f'<{self.url(path)}?{urlencode({**base, "page": page - 1})}>; rel="prev"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    # ----------------------------------------------------------------------------- JSON shapes
    def _installation_repos(self, inst: FakeInstallation) -> list[FakeRepo]:
        return sorted(
            (
                r
                for r in self.repos.values()
                if r.owner.lower() == inst.account.lower()
                and (inst.repository_selection == "all" or r.id in inst.repository_ids)
            ),
            key=lambda r: r.full_name.lower(),
        )

    def _app_json(self, app: FakeApp) -> dict[str, Any]:
        return {
            "id": app.id,
            "slug": app.slug,
            "client_id": app.client_id,
            "node_id": f"A_{app.id}",
            "owner": self.user(app.owner),
            "name": app.name,
            "description": "",
            "external_url": "https://example.invalid",
            "html_url": f"https://github.com/apps/{app.slug}",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "permissions": dict(DEFAULT_PERMISSIONS),
            "events": ["push", "issue_comment", "pull_request"],
            "installations_count": sum(1 for i in self.installations.values() if i.app is app),
        }

    def _installation_json(self, inst: FakeInstallation) -> dict[str, Any]:
        acct = self.user(inst.account)
        return {
            "id": inst.id,
            "account": acct,
            "repository_selection": inst.repository_selection,
            "access_tokens_url": self.url(f"/app/installations/{inst.id}/access_tokens"),
            "repositories_url": self.url("/installation/repositories"),
            "html_url": f"https://github.com/organizations/{inst.account}/settings/installations/{inst.id}",
            "app_id": inst.app.id,
            "app_slug": inst.app.slug,
            "client_id": inst.app.client_id,
            "target_id": acct["id"],
            "target_type": acct["type"],
            "permissions": dict(inst.permissions),
            "events": list(inst.events),
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        u = self.url(f"/repos/{repo.full_name}")
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": f"https://github.com/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": u,
            "archived": repo.archived,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "default_branch": repo.default_branch,
            "pulls_url": u + "/pulls{/number}",
            "issues_url": u + "/issues{/number}",
            "git_refs_url": u + "/git/refs{/sha}",
            "trees_url": u + "/git/trees{/sha}",
            "blobs_url": u + "/git/blobs{/sha}",
            "contents_url": u + "/contents/{+path}",
            "compare_url": u + "/compare/{base}...{head}",
            "labels_url": u + "/labels{/name}",
            "clone_url": f"https://github.com/{repo.full_name}.git",
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "forks_count": 0,
            "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
            "created_at": _iso(repo.created_at),
            "updated_at": _iso(repo.created_at),
            "pushed_at": self._pushed_at(repo),
            "has_issues": True,
            "is_template": False,
            "topics": [],
        }

    def _pushed_at(self, repo: FakeRepo) -> str:
        head = repo.refs.get(f"refs/heads/{repo.default_branch}")
        return repo.obj(head, "commit").committer["date"] if head else _iso(repo.created_at)

    def _webhook_repo(self, repo: FakeRepo) -> dict[str, Any]:
        out = self._repo_json(repo)
        out["url"] = f"https://github.com/{repo.full_name}"
        return out

    def _commit_api_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        c = repo.obj(sha, "commit")
        u = self.url(f"/repos/{repo.full_name}/git/commits/{sha}")
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": u,
            "html_url": f"https://github.com/{repo.full_name}/commit/{sha}",
            "author": dict(c.author),
            "committer": dict(c.committer),
            "message": c.message,
            "tree": {"sha": c.tree, "url": self.url(f"/repos/{repo.full_name}/git/trees/{c.tree}")},
            "parents": [
                {
                    "sha": p,
                    "url": self.url(f"/repos/{repo.full_name}/git/commits/{p}"),
                    "html_url": f"https://github.com/{repo.full_name}/commit/{p}",
                }
                for p in c.parents
            ],
            "verification": {
                "verified": c.verified,
                "reason": "valid" if c.verified else "unsigned",
                "signature": "-----BEGIN PGP SIGNATURE-----" if c.verified else None,
                "payload": None,
                "verified_at": c.committer["date"] if c.verified else None,
            },
        }

    def _commit_rest_json(self, repo: FakeRepo, sha: str, with_files: bool = False) -> dict[str, Any]:
        c = repo.obj(sha, "commit")
        git = self._commit_api_json(repo, sha)
        out: dict[str, Any] = {
            "sha": sha,
            "node_id": git["node_id"],
            "url": self.url(f"/repos/{repo.full_name}/commits/{sha}"),
            "html_url": git["html_url"],
            "comments_url": self.url(f"/repos/{repo.full_name}/commits/{sha}/comments"),
            "commit": {
                "author": git["author"],
                "committer": git["committer"],
                "message": c.message,
                "tree": git["tree"],
                "url": git["url"],
                "comment_count": 0,
                "verification": git["verification"],
            },
            "author": self.user(c.login),
            "committer": self.user(c.login) if not c.verified else self.user("web-flow"),
            "parents": [
                {
                    "sha": p,
                    "url": self.url(f"/repos/{repo.full_name}/commits/{p}"),
                    "html_url": f"https://github.com/{repo.full_name}/commit/{p}",
                }
                for p in c.parents
            ],
        }
        if with_files:
            old = repo.flatten(repo.commit_tree(c.parents[0])) if c.parents else {}
            files = self._diff_files(repo, old, repo.flatten(c.tree))
            out["files"] = files
            adds, dels = sum(f["additions"] for f in files), sum(f["deletions"] for f in files)
            out["stats"] = {"additions": adds, "deletions": dels, "total": adds + dels}
        return out

    def _diff_files(
        self, repo: FakeRepo, old: Mapping[str, tuple[str, str, str]], new: Mapping[str, tuple[str, str, str]]
    ) -> list[dict[str, Any]]:
        out = []
        for path in sorted(set(old) | set(new)):
            a, b = old.get(path), new.get(path)
            if a == b:
                continue
            status = "added" if a is None else "removed" if b is None else "modified"
            before = repo.obj(a[2], "blob").decode(errors="replace").splitlines() if a else []
            after = repo.obj(b[2], "blob").decode(errors="replace").splitlines() if b else []
            diff = list(difflib.unified_diff(before, after, lineterm="", n=3))[2:]
            adds = sum(1 for d in diff if d.startswith("+"))
            dels = sum(1 for d in diff if d.startswith("-"))
            sha = (b or a)[2]  # type: ignore[index]
            out.append(
                {
                    "sha": sha,
                    "filename": path,
                    "status": status,
                    "additions": adds,
                    "deletions": dels,
                    "changes": adds + dels,
                    "blob_url": f"https://github.com/{repo.full_name}/blob/{sha}/{path}",
                    "raw_url": f"https://github.com/{repo.full_name}/raw/{sha}/{path}",
                    "contents_url": self.url(f"/repos/{repo.full_name}/contents/{path}"),
                    "patch": "\n".join(diff),
                }
            )
        return out

    def _label_json(self, repo: FakeRepo, label: dict[str, Any]) -> dict[str, Any]:
        return {**label, "url": self.url(f"/repos/{repo.full_name}/labels/{label['name']}")}

    def _issue_json(self, repo: FakeRepo, issue: Issue) -> dict[str, Any]:
        u = self.url(f"/repos/{repo.full_name}/issues/{issue.number}")
        kind = "pull" if issue.pull else "issues"
        out = {
            "id": repo.id * 100000 + issue.number,
            "node_id": f"I_{repo.id}_{issue.number}",
            "url": u,
            "repository_url": self.url(f"/repos/{repo.full_name}"),
            "labels_url": u + "/labels{/name}",
            "comments_url": u + "/comments",
            "events_url": u + "/events",
            "html_url": f"https://github.com/{repo.full_name}/{kind}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self._label_json(repo, repo.labels[n.lower()]) for n in issue.labels],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": sum(1 for c in repo.comments.values() if c.issue == issue.number),
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at or issue.created_at),
            "closed_at": _iso(issue.closed_at) if issue.closed_at else None,
            "author_association": self._association(repo, issue.user),
        }
        if issue.pull is not None:
            pu = self.url(f"/repos/{repo.full_name}/pulls/{issue.number}")
            out["pull_request"] = {
                "url": pu,
                "html_url": out["html_url"],
                "diff_url": out["html_url"] + ".diff",
                "patch_url": out["html_url"] + ".patch",
                "merged_at": _iso(issue.pull.merged_at) if issue.pull.merged_at else None,
            }
        return out

    def _association(self, repo: FakeRepo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        if login in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def _pull_head(self, repo: FakeRepo, pr: Pull) -> str:
        return repo.refs.get(f"refs/heads/{pr.head}", pr.head_sha)

    def _pull_json(self, repo: FakeRepo, issue: Issue) -> dict[str, Any]:
        pr = issue.pull
        assert pr is not None
        if issue.state == "open":
            pr.head_sha = self._pull_head(repo, pr)
            pr.base_sha = repo.refs.get(f"refs/heads/{pr.base}", pr.base_sha)
        base = self._issue_json(repo, issue)
        u = self.url(f"/repos/{repo.full_name}/pulls/{issue.number}")
        side = {"repo": self._repo_json(repo), "user": self.user(repo.owner)}
        return {
            "url": u,
            "id": base["id"],
            "node_id": f"PR_{repo.id}_{issue.number}",
            "html_url": base["html_url"],
            "diff_url": base["html_url"] + ".diff",
            "patch_url": base["html_url"] + ".patch",
            "issue_url": base["url"],
            "commits_url": u + "/commits",
            "review_comments_url": u + "/comments",
            "review_comment_url": self.url(f"/repos/{repo.full_name}/pulls/comments{{/number}}"),
            "comments_url": base["comments_url"],
            "statuses_url": self.url(f"/repos/{repo.full_name}/statuses/{pr.head_sha}"),
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": base["user"],
            "body": issue.body,
            "labels": base["labels"],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": base["created_at"],
            "updated_at": base["updated_at"],
            "closed_at": base["closed_at"],
            "merged_at": _iso(pr.merged_at) if pr.merged_at else None,
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "draft": pr.draft,
            "merged": pr.merged,
            "mergeable": None,
            "rebaseable": None,
            "mergeable_state": "unknown",
            "merged_by": None,
            "comments": base["comments"],
            "review_comments": 0,
            "maintainer_can_modify": pr.maintainer_can_modify,
            "author_association": base["author_association"],
            "auto_merge": None,
            "head": {"label": f"{repo.owner}:{pr.head}", "ref": pr.head, "sha": pr.head_sha, **side},
            "base": {"label": f"{repo.owner}:{pr.base}", "ref": pr.base, "sha": pr.base_sha, **side},
            "_links": {
                "self": {"href": u},
                "html": {"href": base["html_url"]},
                "issue": {"href": base["url"]},
                "comments": {"href": base["comments_url"]},
                "review_comments": {"href": u + "/comments"},
                "review_comment": {"href": self.url(f"/repos/{repo.full_name}/pulls/comments{{/number}}")},
                "commits": {"href": u + "/commits"},
                "statuses": {"href": self.url(f"/repos/{repo.full_name}/statuses/{pr.head_sha}")},
            },
            "commits": len(self._pull_commits(repo, pr)),
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def _comment_json(self, repo: FakeRepo, c: Comment) -> dict[str, Any]:
        u = self.url(f"/repos/{repo.full_name}/issues/comments/{c.id}")
        counts: dict[str, int] = {}
        for _, _, content in c.reactions:
            counts[content] = counts.get(content, 0) + 1
        return {
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "url": u,
            "body": c.body,
            "user": self.user(c.user),
            "html_url": f"https://github.com/{repo.full_name}/issues/{c.issue}#issuecomment-{c.id}",
            "issue_url": self.url(f"/repos/{repo.full_name}/issues/{c.issue}"),
            "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at),
            "author_association": self._association(repo, c.user),
            "reactions": {
                "url": u + "/reactions",
                "total_count": len(c.reactions),
                **{
                    k: counts.get(k, 0)
                    for k in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
                },
            },
        }

    def _check_json(self, repo: FakeRepo, run: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in run.items() if not k.startswith("_")}
        out["output"] = {
            **run["output"],
            "annotations_count": len(run["_annotations"]),
            "annotations_url": self.url(f"/repos/{repo.full_name}/check-runs/{run['id']}/annotations"),
        }
        return out

    # ----------------------------------------------------------------------------- /app, /installation
    def op_apps_get_authenticated(self, ctx: Ctx) -> Any:
        assert ctx.app is not None
        return self._app_json(ctx.app)

    def op_apps_list_installations(self, ctx: Ctx) -> Any:
        items = [self._installation_json(i) for i in self.installations.values() if i.app is ctx.app]
        return self._page(ctx, items, "/app/installations")

    def op_apps_get_installation(self, ctx: Ctx) -> Any:
        inst = self.installations.get(int(ctx.params["installation_id"]))
        if inst is None or inst.app is not ctx.app:
            raise HttpError(404, "Not Found")
        return self._installation_json(inst)

    def op_apps_get_repo_installation(self, ctx: Ctx) -> Any:
        for inst in self.installations.values():
            if inst.app is ctx.app and ctx.repo in self._installation_repos(inst):
                return self._installation_json(inst)
        raise HttpError(404, "Not Found")

    def op_apps_create_installation_access_token(self, ctx: Ctx) -> Any:
        inst = self.installations.get(int(ctx.params["installation_id"]))
        if inst is None or inst.app is not ctx.app:
            raise HttpError(404, "Not Found")
        if inst.suspended:
            raise HttpError(403, "This installation has been suspended")
        body = ctx.body or {}
        perms = dict(body.get("permissions") or inst.permissions)
        for name, level in perms.items():
            if _LEVEL.get(inst.permissions.get(name, ""), 0) < _LEVEL[level]:
                raise HttpError(422, "The permissions requested are not granted to this installation.")
        repos = self._installation_repos(inst)
        ids: set[int] | None = None
        if "repository_ids" in body or "repositories" in body:
            ids = set()
            for rid in body.get("repository_ids", []):
                if rid not in {r.id for r in repos}:
                    raise HttpError(
                        422,
                        NOT_ACCESSIBLE,
                    )
                ids.add(rid)
            for name in body.get("repositories", []):
                hit = [r for r in repos if r.name.lower() == name.lower()]
                if not hit:
                    raise HttpError(
                        422,
                        NOT_ACCESSIBLE,
                    )
                ids.add(hit[0].id)
        token = f"ghs_{inst.app.id}_{secrets.token_urlsafe(48)}"  # the newer, longer format
        expires = self.now() + self.token_lifetime
        self.tokens[token] = FakeToken(token, inst, expires, perms, ids)
        out: dict[str, Any] = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": perms,
            "repository_selection": "selected" if ids is not None else inst.repository_selection,
        }
        if ids is not None:
            out["repositories"] = [self._repo_json(r) for r in repos if r.id in ids]
        return 201, out

    def op_apps_list_repos_accessible_to_installation(self, ctx: Ctx) -> Any:
        tok = ctx.token
        assert tok is not None
        repos = [
            r
            for r in self._installation_repos(tok.installation)
            if tok.repository_ids is None or r.id in tok.repository_ids
        ]
        status, chunk, headers = self._page(
            ctx, [self._repo_json(r) for r in repos], "/installation/repositories"
        )
        sel = "selected" if tok.repository_ids is not None else tok.installation.repository_selection
        return (
            status,
            {"total_count": len(repos), "repositories": chunk, "repository_selection": sel},
            headers,
        )

    def op_apps_revoke_installation_access_token(self, ctx: Ctx) -> Any:
        assert ctx.token is not None
        ctx.token.revoked = True
        return 204, None

    def op_rate_limit_get(self, ctx: Ctx) -> Any:
        used = self.rate_used.get(ctx.token.installation.id, 0) if ctx.token else 0
        core = {
            "limit": self.rate_limit,
            "used": used,
            "remaining": max(0, self.rate_limit - used),
            "reset": self.rate_reset,
        }
        return {
            "resources": {"core": core, "search": {**core, "limit": 30, "used": 0, "remaining": 30}},
            "rate": core,
        }

    # ----------------------------------------------------------------------------- repository, git
    def op_repos_get(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        return self._repo_json(ctx.repo)

    def op_repos_get_collaborator_permission_level(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        login = ctx.params["username"]
        if login not in self.users:
            raise HttpError(404, "Not Found")
        role = "admin" if login == repo.owner else repo.collaborators.get(login)
        if role is None:
            role = "none" if repo.private else "read"
        perm = {"maintain": "write", "triage": "read"}.get(role, role)
        return {
            "permission": perm,
            "role_name": role,
            "user": {
                **self.user(login),
                "permissions": {
                    "admin": perm == "admin",
                    "maintain": role in ("admin", "maintain"),
                    "push": perm in ("admin", "write"),
                    "triage": role != "none",
                    "pull": role != "none",
                },
            },
        }

    def op_git_get_ref(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        ref = "refs/" + ctx.params["ref"]
        if ref not in repo.refs:
            raise HttpError(404, "Not Found")
        return self._ref_json(repo, ref)

    def _ref_json(self, repo: FakeRepo, ref: str) -> dict[str, Any]:
        sha = repo.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{hashlib.md5(ref.encode(), usedforsecurity=False).hexdigest()[:10]}",
            "url": self.url(f"/repos/{repo.full_name}/git/{ref}"),
            "object": {
                "type": "commit",
                "sha": sha,
                "url": self.url(f"/repos/{repo.full_name}/git/commits/{sha}"),
            },
        }

    def op_git_list_matching_refs(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        prefix = "refs/" + ctx.params["ref"]
        return [self._ref_json(repo, r) for r in sorted(repo.refs) if r.startswith(prefix)]

    def op_git_create_ref(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        ref, sha = ctx.body["ref"], ctx.body["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise HttpError(422, f"{ref} is not a valid ref name.")
        if ref in repo.refs:
            raise HttpError(422, "Reference already exists")
        if repo.objects.get(sha, ("",))[0] != "commit":
            raise HttpError(422, "Object does not exist")
        self._check_workflows(ctx, repo, None, sha)
        repo.refs[ref] = sha
        return 201, self._ref_json(repo, ref), {"Location": self.url(f"/repos/{repo.full_name}/git/{ref}")}

    def op_git_update_ref(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        ref = "refs/" + ctx.params["ref"]
        sha = ctx.body["sha"]
        if ref not in repo.refs:
            raise HttpError(422, "Reference does not exist")
        if repo.objects.get(sha, ("",))[0] != "commit":
            raise HttpError(422, "Object does not exist")
        old = repo.refs[ref]
        if not ctx.body.get("force") and old not in repo.ancestors(sha):
            raise HttpError(422, "Update is not a fast forward")
        self._check_workflows(ctx, repo, old, sha)
        repo.refs[ref] = sha
        return self._ref_json(repo, ref)

    def op_git_delete_ref(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        ref = "refs/" + ctx.params["ref"]
        if ref not in repo.refs:
            raise HttpError(422, "Reference does not exist")
        del repo.refs[ref]
        return 204, None

    def _check_workflows(self, ctx: Ctx, repo: FakeRepo, old: str | None, new: str) -> None:
        """GitHub refuses an App's change to a workflow file without the ``workflows`` permission."""
        if ctx.token is None or ctx.token.permissions.get("workflows") == "write":
            return
        before = repo.flatten(repo.commit_tree(old)) if old else {}
        if old is None:
            base = repo.refs.get(f"refs/heads/{repo.default_branch}")
            before = repo.flatten(repo.commit_tree(base)) if base else {}
        after = repo.flatten(repo.commit_tree(new))
        for path in set(before) | set(after):
            if path.startswith(".github/workflows/") and before.get(path) != after.get(path):
                raise HttpError(
                    422,
                    f"refusing to allow a GitHub App to create or update workflow `{path}` "
                    "without `workflows` permission",
                )

    def op_git_get_tree(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        key = ctx.params["tree_sha"]
        sha = key if repo.objects.get(key, ("",))[0] == "tree" else None
        if sha is None:
            commit = repo.resolve(key)
            if commit is None:
                raise HttpError(404, "Not Found")
            sha = repo.commit_tree(commit)
        entries: list[dict[str, Any]] = []
        truncated = False
        recursive = "recursive" in ctx.query

        def walk(tree: str, prefix: str) -> None:
            nonlocal truncated
            for name, (mode, typ, s) in repo.obj(tree, "tree").items():
                if recursive and len(entries) >= self.tree_entry_limit:
                    truncated = True
                    return
                e: dict[str, Any] = {"path": prefix + name, "mode": mode, "type": typ, "sha": s}
                if typ == "blob":
                    e["size"] = len(repo.obj(s, "blob"))
                    e["url"] = self.url(f"/repos/{repo.full_name}/git/blobs/{s}")
                elif typ == "tree":
                    e["url"] = self.url(f"/repos/{repo.full_name}/git/trees/{s}")
                entries.append(e)
                if typ == "tree" and recursive:
                    walk(s, f"{prefix}{name}/")

        walk(sha, "")
        return {
            "sha": sha,
            "url": self.url(f"/repos/{repo.full_name}/git/trees/{sha}"),
            "tree": entries,
            "truncated": truncated,
        }

    def op_git_create_tree(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        base = ctx.body.get("base_tree")
        if base is not None and repo.objects.get(base, ("",))[0] != "tree":
            raise HttpError(422, "Invalid tree info", errors=["base_tree is not a valid tree oid"])
        flat = repo.flatten(base) if base else {}
        for item in ctx.body["tree"]:
            path, mode, typ = item.get("path"), item.get("mode"), item.get("type")
            if not path or mode is None or typ is None:
                raise HttpError(422, "Invalid tree info", errors=["tree entries need path, mode and type"])
            if "sha" in item and "content" in item:
                raise HttpError(422, "Invalid tree info", errors=["use either sha or content"])
            under = [p for p in flat if p == path or p.startswith(path + "/")]
            if "content" in item:
                if typ != "blob":
                    raise HttpError(422, "Invalid tree info")
                flat[path] = (mode, "blob", repo.put_blob(item["content"].encode()))
            elif item.get("sha") is None:
                if not under:
                    raise HttpError(422, "GitRPC::BadObjectState", errors=[f"{path} does not exist"])
                for p in under:
                    del flat[p]
            elif typ == "tree":
                if repo.objects.get(item["sha"], ("",))[0] != "tree":
                    raise HttpError(422, "Invalid tree info", errors=[f"{item['sha']} is not a tree"])
                for p in under:
                    del flat[p]
                flat.update(repo.flatten(item["sha"], path + "/"))
            else:
                if typ == "blob" and repo.objects.get(item["sha"], ("",))[0] != "blob":
                    raise HttpError(422, "Invalid tree info", errors=[f"{item['sha']} is not a blob"])
                flat[path] = (mode, typ, item["sha"])
        sha = repo.build(flat)
        body = self.op_git_get_tree(Ctx("GET", {"tree_sha": sha}, {}, None, {}, ctx.token, None, repo))
        return 201, body

    def op_git_get_blob(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = ctx.params["file_sha"]
        data = repo.obj(sha, "blob")
        if "raw" in ctx.headers.get("Accept", ""):
            return data
        b64 = base64.encodebytes(data).decode()
        return {
            "sha": sha,
            "node_id": f"B_{sha[:12]}",
            "size": len(data),
            "url": self.url(f"/repos/{repo.full_name}/git/blobs/{sha}"),
            "content": b64,
            "encoding": "base64",
        }

    def op_git_create_blob(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        enc = ctx.body.get("encoding", "utf-8")
        content = ctx.body["content"]
        try:
            data = base64.b64decode(content, validate=False) if enc == "base64" else content.encode()
        except ValueError:
            raise HttpError(422, "Invalid base64") from None
        sha = repo.put_blob(data)
        return 201, {"sha": sha, "url": self.url(f"/repos/{repo.full_name}/git/blobs/{sha}")}

    def op_git_get_commit(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = ctx.params["commit_sha"]
        repo.obj(sha, "commit")
        return self._commit_api_json(repo, sha)

    def op_git_create_commit(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        body = ctx.body
        if repo.objects.get(body["tree"], ("",))[0] != "tree":
            raise HttpError(422, "Tree SHA does not exist")
        parents = body.get("parents", [])
        for p in parents:
            if repo.objects.get(p, ("",))[0] != "commit":
                raise HttpError(422, "Parent SHA does not exist or is not a commit object")
        app = ctx.token.installation.app if ctx.token else None
        date = _iso(self.now())
        bot = {
            "name": app.bot_login if app else "unknown",
            "email": f"{app.id if app else 0}+{app.bot_login if app else 'x'}@users.noreply.github.com",
            "date": date,
        }
        author = {**bot, **(body.get("author") or {})}
        committer = (
            {**author, **(body.get("committer") or {})}
            if body.get("committer") or body.get("author")
            else {"name": "GitHub", "email": "noreply@github.com", "date": date}
        )
        verified = app is not None and not any(k in body for k in ("author", "committer", "signature"))
        commit = Commit(body["tree"], parents, body["message"], author, committer, ctx.actor, verified)
        sha = repo.put_commit(commit)
        return (
            201,
            self._commit_api_json(repo, sha),
            {"Location": self.url(f"/repos/{repo.full_name}/git/commits/{sha}")},
        )

    def op_repos_get_branch(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        name = ctx.params["branch"]
        sha = repo.refs.get(f"refs/heads/{name}")
        if sha is None:
            raise HttpError(404, "Branch not found")
        return {
            "name": name,
            "commit": self._commit_rest_json(repo, sha),
            "protected": False,
            "_links": {
                "self": self.url(f"/repos/{repo.full_name}/branches/{name}"),
                "html": f"https://github.com/{repo.full_name}/tree/{name}",
            },
            "protection_url": self.url(f"/repos/{repo.full_name}/branches/{name}/protection"),
        }

    def op_repos_get_commit(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = repo.resolve(ctx.params["ref"])
        if sha is None:
            raise HttpError(422, f"No commit found for SHA: {ctx.params['ref']}")
        return self._commit_rest_json(repo, sha, with_files=True)

    def _merge_base(self, repo: FakeRepo, a: str, b: str) -> str | None:
        seen = set(repo.ancestors(a))
        return next((s for s in repo.ancestors(b) if s in seen), None)

    def _pull_commits(self, repo: FakeRepo, pr: Pull) -> list[str]:
        head = self._pull_head(repo, pr)
        base = repo.refs.get(f"refs/heads/{pr.base}", pr.base_sha)
        if pr.merged:
            base = pr.base_sha
        exclude = set(repo.ancestors(base))
        return [s for s in reversed(repo.ancestors(head)) if s not in exclude]

    def op_repos_compare_commits_with_basehead(self, ctx: Ctx) -> Any:
        base, sep, head = ctx.params["basehead"].partition("...")
        if not sep:
            base, sep, head = ctx.params["basehead"].partition("..")
        if not sep:
            raise HttpError(404, "Not Found")
        return self._compare(ctx, base, head)

    def op_repos_compare_commits(self, ctx: Ctx) -> Any:
        return self._compare(ctx, ctx.params["base"], ctx.params["head"])

    def _compare(self, ctx: Ctx, base_ref: str, head_ref: str) -> Any:
        repo = ctx.repo
        assert repo is not None
        base, head = (
            repo.resolve(base_ref.rsplit(":", maxsplit=1)[-1]),
            repo.resolve(head_ref.rsplit(":", maxsplit=1)[-1]),
        )
        if base is None or head is None:
            raise HttpError(404, "Not Found")
        mb = self._merge_base(repo, base, head)
        if mb is None:
            raise HttpError(404, f"No common ancestor between {base_ref} and {head_ref}.")
        base_anc = set(repo.ancestors(base))
        head_anc = set(repo.ancestors(head))
        ahead = [s for s in reversed(repo.ancestors(head)) if s not in base_anc]
        behind = [s for s in repo.ancestors(base) if s not in head_anc]
        status = (
            "identical"
            if not ahead and not behind
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )
        files = self._diff_files(
            repo, repo.flatten(repo.commit_tree(mb)), repo.flatten(repo.commit_tree(head))
        )
        per_page = int(ctx.q("per_page", "250") or 250)
        page = int(ctx.q("page", "1") or 1)
        limit = min(per_page, self.compare_commit_limit)
        out = {
            "url": self.url(f"/repos/{repo.full_name}/compare/{base_ref}...{head_ref}"),
            "html_url": f"https://github.com/{repo.full_name}/compare/{base_ref}...{head_ref}",
            "permalink_url": f"https://github.com/{repo.full_name}/compare/{base[:7]}...{head[:7]}",
            "diff_url": f"https://github.com/{repo.full_name}/compare/{base_ref}...{head_ref}.diff",
            "patch_url": f"https://github.com/{repo.full_name}/compare/{base_ref}...{head_ref}.patch",
            "base_commit": self._commit_rest_json(repo, base),
            "merge_base_commit": self._commit_rest_json(repo, mb),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [self._commit_rest_json(repo, s) for s in ahead[(page - 1) * limit : page * limit]],
        }
        if page == 1:
            out["files"] = files[: self.compare_file_limit]
        return out

    def op_repos_download_tarball_archive(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = repo.resolve(ctx.params["ref"] or repo.default_branch)
        if sha is None:
            raise HttpError(404, "Not Found")
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.archives[token] = (repo.full_name, sha)
        root = self.base_url[: len(self.base_url) - len(self.prefix)] if self.prefix else self.base_url
        where = f"{root}/_codeload/{repo.full_name}/legacy.tar.gz/{sha}?token={token}"
        return 302, None, {"Location": where}

    def op_repos_get_content(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = repo.resolve(ctx.q("ref") or repo.default_branch)
        if sha is None:
            raise HttpError(404, f"No commit found for the ref {ctx.q('ref')}")
        path = ctx.params["path"].strip("/")
        tree = repo.commit_tree(sha)
        kind, obj_sha, mode = "tree", tree, "040000"
        for part in [p for p in path.split("/") if p]:
            if kind != "tree" or part not in repo.obj(obj_sha, "tree"):
                raise HttpError(404, "Not Found")
            mode, kind, obj_sha = repo.obj(obj_sha, "tree")[part]
        ref = ctx.q("ref") or repo.default_branch

        def item(p: str, m: str, k: str, s: str) -> dict[str, Any]:
            u = self.url(f"/repos/{repo.full_name}/contents/{p}?ref={ref}")
            typ = {"tree": "dir", "commit": "submodule"}.get(k, "symlink" if m == "120000" else "file")
            size = len(repo.obj(s, "blob")) if k == "blob" else 0
            git = self.url(f"/repos/{repo.full_name}/git/{'trees' if k == 'tree' else 'blobs'}/{s}")
            html = f"https://github.com/{repo.full_name}/{'tree' if k == 'tree' else 'blob'}/{ref}/{p}"
            return {
                "type": typ,
                "size": size,
                "name": p.rsplit("/", 1)[-1],
                "path": p,
                "sha": s,
                "url": u,
                "git_url": git,
                "html_url": html,
                "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{p}"
                if k == "blob"
                else None,
                "_links": {"self": u, "git": git, "html": html},
            }

        if kind == "tree":
            return [
                item(f"{path}/{n}".lstrip("/"), m, k, s) for n, (m, k, s) in repo.obj(obj_sha, "tree").items()
            ]
        out = item(path, mode, kind, obj_sha)
        if kind == "blob":
            data = repo.obj(obj_sha, "blob")
            if "raw" in ctx.headers.get("Accept", ""):
                return data
            out["content"], out["encoding"] = base64.encodebytes(data).decode(), "base64"
        return out

    # ----------------------------------------------------------------------------- pulls
    def _issue(self, ctx: Ctx, key: str = "issue_number") -> Issue:
        assert ctx.repo is not None
        issue = ctx.repo.issues.get(int(ctx.params[key]))
        if issue is None:
            raise HttpError(404, "Not Found")
        return issue

    def op_pulls_list(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        state = ctx.q("state", "open")
        head, base = ctx.q("head"), ctx.q("base")
        items = [i for i in repo.issues.values() if i.pull is not None and state in ("all", i.state)]
        if head:
            owner, _, branch = head.rpartition(":")
            items = [
                i
                for i in items
                if (not owner or owner.lower() == repo.owner.lower()) and i.pull.head == branch
            ]  # type: ignore[union-attr]
        if base:
            items = [i for i in items if i.pull.base == base]  # type: ignore[union-attr]
        items.sort(key=lambda i: i.number, reverse=ctx.q("direction", "desc") == "desc")
        return self._page(ctx, [self._pull_json(repo, i) for i in items], f"/repos/{repo.full_name}/pulls")

    def op_pulls_get(self, ctx: Ctx) -> Any:
        issue = self._issue(ctx, "pull_number")
        if issue.pull is None:
            raise HttpError(404, "Not Found")
        assert ctx.repo is not None
        return self._pull_json(ctx.repo, issue)

    def op_pulls_create(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        body = ctx.body
        if "issue" in body:
            raise HttpError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": "converting issues is not supported by the fake",
                    }
                ],
            )
        head = body["head"].rpartition(":")[2]
        base = body["base"]
        if f"refs/heads/{base}" not in repo.refs:
            raise HttpError(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "field": "base", "code": "invalid"}],
            )
        if f"refs/heads/{head}" not in repo.refs:
            raise HttpError(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "field": "head", "code": "invalid"}],
            )
        for i in repo.issues.values():
            if i.pull and i.state == "open" and i.pull.head == head and i.pull.base == base:
                raise HttpError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {repo.owner}:{head}.",
                        }
                    ],
                )
        pr = Pull(
            head,
            base,
            repo.refs[f"refs/heads/{head}"],
            repo.refs[f"refs/heads/{base}"],
            draft=bool(body.get("draft")),
            maintainer_can_modify=body.get("maintainer_can_modify", True),
        )
        if not self._pull_commits(repo, pr):
            raise HttpError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"No commits between {base} and {head}",
                    }
                ],
            )
        issue = self._new_issue(repo, body.get("title") or head, body.get("body"), ctx.actor)
        issue.pull = pr
        return 201, self._pull_json(repo, issue)

    def _new_issue(self, repo: FakeRepo, title: str, body: str | None, user: str) -> Issue:
        number = max(repo.issues, default=0) + 1
        repo.issues[number] = Issue(number, title, body, user, self.now())
        return repo.issues[number]

    def op_pulls_update(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx, "pull_number")
        pr = issue.pull
        if pr is None:
            raise HttpError(404, "Not Found")
        body = ctx.body or {}
        if "title" in body:
            issue.title = body["title"]
        if "body" in body:
            issue.body = body["body"]
        if "base" in body:
            if f"refs/heads/{body['base']}" not in repo.refs:
                raise HttpError(
                    422,
                    "Validation Failed",
                    errors=[{"resource": "PullRequest", "field": "base", "code": "invalid"}],
                )
            pr.base = body["base"]
        if body.get("state") == "closed" and issue.state == "open":
            pr.head_sha = self._pull_head(repo, pr)
            issue.state, issue.closed_at = "closed", self.now()
        elif body.get("state") == "open" and issue.state == "closed":
            if pr.merged:
                raise HttpError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": "state cannot be changed. The pull request has been merged.",
                        }
                    ],
                )
            if f"refs/heads/{pr.head}" not in repo.refs:
                raise HttpError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": "state cannot be changed. The head branch was deleted.",
                        }
                    ],
                )
            issue.state, issue.closed_at = "open", None
        if "maintainer_can_modify" in body:
            pr.maintainer_can_modify = body["maintainer_can_modify"]
        issue.updated_at = self.now()
        return self._pull_json(repo, issue)

    def op_pulls_list_commits(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx, "pull_number")
        if issue.pull is None:
            raise HttpError(404, "Not Found")
        items = [self._commit_rest_json(repo, s) for s in self._pull_commits(repo, issue.pull)]
        return self._page(ctx, items, f"/repos/{repo.full_name}/pulls/{issue.number}/commits")

    def op_pulls_list_files(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx, "pull_number")
        pr = issue.pull
        if pr is None:
            raise HttpError(404, "Not Found")
        head = self._pull_head(repo, pr)
        mb = self._merge_base(repo, repo.refs.get(f"refs/heads/{pr.base}", pr.base_sha), head)
        old = repo.flatten(repo.commit_tree(mb)) if mb else {}
        items = self._diff_files(repo, old, repo.flatten(repo.commit_tree(head)))
        return self._page(ctx, items, f"/repos/{repo.full_name}/pulls/{issue.number}/files")

    # ----------------------------------------------------------------------------- issues, comments
    def op_issues_list_for_repo(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        state = ctx.q("state", "open")
        items = [i for i in repo.issues.values() if state in ("all", i.state)]
        if ctx.q("labels"):
            want = {x.strip().lower() for x in (ctx.q("labels") or "").split(",")}
            items = [i for i in items if want <= {n.lower() for n in i.labels}]
        if ctx.q("creator"):
            items = [i for i in items if i.user.lower() == (ctx.q("creator") or "").lower()]
        items.sort(key=lambda i: i.number, reverse=ctx.q("direction", "desc") == "desc")
        return self._page(ctx, [self._issue_json(repo, i) for i in items], f"/repos/{repo.full_name}/issues")

    def op_issues_get(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        return self._issue_json(ctx.repo, self._issue(ctx))

    def op_issues_create(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._new_issue(repo, str(ctx.body["title"]), ctx.body.get("body"), ctx.actor)
        issue.labels = self._ensure_labels(repo, ctx.body.get("labels") or [])
        return 201, self._issue_json(repo, issue)

    def op_issues_update(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx)
        body = ctx.body or {}
        if "title" in body:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = body["body"]
        if "labels" in body:
            issue.labels = self._ensure_labels(repo, body["labels"] or [])
        if body.get("state") in ("open", "closed") and body["state"] != issue.state:
            issue.state = body["state"]
            issue.closed_at = self.now() if issue.state == "closed" else None
            issue.state_reason = body.get("state_reason") or (
                "completed" if issue.state == "closed" else "reopened"
            )
        issue.updated_at = self.now()
        return self._issue_json(repo, issue)

    def _ensure_labels(self, repo: FakeRepo, names: list[Any]) -> list[str]:
        out = []
        for n in names:
            name = n["name"] if isinstance(n, dict) else str(n)
            if name.lower() not in repo.labels:
                repo.labels[name.lower()] = self._new_label(name, "ededed", None)
            out.append(repo.labels[name.lower()]["name"])
        return list(dict.fromkeys(out))

    def _new_label(self, name: str, color: str, description: str | None) -> dict[str, Any]:
        lid = next(self._ids)
        return {
            "id": lid,
            "node_id": f"LA_{lid}",
            "name": name,
            "color": color,
            "default": False,
            "description": description,
        }

    def _add_comment(self, repo: FakeRepo, issue: Issue, body: str, user: str) -> Comment:
        now = self.now()
        c = Comment(next(self._ids), issue.number, body, user, now, now)
        self.user(user)
        repo.comments[c.id] = c
        issue.updated_at = now
        return c

    def op_issues_list_comments(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx)
        items = [self._comment_json(repo, c) for c in repo.comments.values() if c.issue == issue.number]
        return self._page(ctx, items, f"/repos/{repo.full_name}/issues/{issue.number}/comments")

    def op_issues_create_comment(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        c = self._add_comment(repo, self._issue(ctx), ctx.body["body"], ctx.actor)
        return 201, self._comment_json(repo, c)

    def _comment(self, ctx: Ctx) -> Comment:
        assert ctx.repo is not None
        c = ctx.repo.comments.get(int(ctx.params["comment_id"]))
        if c is None:
            raise HttpError(404, "Not Found")
        return c

    def op_issues_get_comment(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        return self._comment_json(ctx.repo, self._comment(ctx))

    def op_issues_update_comment(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        c = self._comment(ctx)
        c.body, c.updated_at = ctx.body["body"], self.now()
        return self._comment_json(ctx.repo, c)

    def _reaction_json(self, rid: int, user: str, content: str) -> dict[str, Any]:
        return {
            "id": rid,
            "node_id": f"RE_{rid}",
            "user": self.user(user),
            "content": content,
            "created_at": _iso(self.now()),
        }

    def _react(self, ctx: Ctx, bucket: list[tuple[int, str, str]]) -> Any:
        content = ctx.body["content"]
        for rid, user, c in bucket:
            if user == ctx.actor and c == content:
                return 200, self._reaction_json(rid, user, c)
        rid = next(self._ids)
        bucket.append((rid, ctx.actor, content))
        return 201, self._reaction_json(rid, ctx.actor, content)

    def op_reactions_create_for_issue_comment(self, ctx: Ctx) -> Any:
        return self._react(ctx, self._comment(ctx).reactions)

    def op_reactions_list_for_issue_comment(self, ctx: Ctx) -> Any:
        c = self._comment(ctx)
        items = [self._reaction_json(*r) for r in c.reactions if ctx.q("content") in (None, r[2])]
        assert ctx.repo is not None
        return self._page(ctx, items, f"/repos/{ctx.repo.full_name}/issues/comments/{c.id}/reactions")

    def op_reactions_create_for_issue(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        return self._react(ctx, ctx.repo.reactions.setdefault(self._issue(ctx).number, []))

    def op_reactions_list_for_issue(self, ctx: Ctx) -> Any:
        assert ctx.repo is not None
        number = self._issue(ctx).number
        items = [
            self._reaction_json(*r)
            for r in ctx.repo.reactions.get(number, [])
            if ctx.q("content") in (None, r[2])
        ]
        return self._page(ctx, items, f"/repos/{ctx.repo.full_name}/issues/{number}/reactions")

    # ----------------------------------------------------------------------------- labels
    def op_issues_list_labels_for_repo(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        return self._page(
            ctx,
            [self._label_json(repo, lb) for lb in repo.labels.values()],
            f"/repos/{repo.full_name}/labels",
        )

    def op_issues_get_label(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        label = repo.labels.get(ctx.params["name"].lower())
        if label is None:
            raise HttpError(404, "Not Found")
        return self._label_json(repo, label)

    def op_issues_create_label(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        name = ctx.body["name"]
        if name.lower() in repo.labels:
            raise HttpError(
                422,
                "Validation Failed",
                errors=[{"resource": "Label", "code": "already_exists", "field": "name"}],
            )
        color = (ctx.body.get("color") or "ededed").lstrip("#")
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise HttpError(
                422, "Validation Failed", errors=[{"resource": "Label", "code": "invalid", "field": "color"}]
            )
        repo.labels[name.lower()] = self._new_label(name, color, ctx.body.get("description"))
        return 201, self._label_json(repo, repo.labels[name.lower()])

    def op_issues_list_labels_on_issue(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx)
        items = [self._label_json(repo, repo.labels[n.lower()]) for n in issue.labels]
        return self._page(ctx, items, f"/repos/{repo.full_name}/issues/{issue.number}/labels")

    def op_issues_add_labels(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx)
        names = ctx.body.get("labels", []) if isinstance(ctx.body, dict) else ctx.body or []
        issue.labels = list(dict.fromkeys(issue.labels + self._ensure_labels(repo, names)))
        return [self._label_json(repo, repo.labels[n.lower()]) for n in issue.labels]

    def op_issues_remove_label(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        issue = self._issue(ctx)
        name = ctx.params["name"].lower()
        if name not in [n.lower() for n in issue.labels]:
            raise HttpError(404, "Label does not exist")
        issue.labels = [n for n in issue.labels if n.lower() != name]
        return [self._label_json(repo, repo.labels[n.lower()]) for n in issue.labels]

    # ----------------------------------------------------------------------------- check runs
    def op_checks_create(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        body = ctx.body
        if repo.resolve(body["head_sha"]) != body["head_sha"]:
            raise HttpError(422, "No commit found for SHA: " + body["head_sha"])
        rid = next(self._ids)
        app = ctx.token.installation.app if ctx.token else None
        run: dict[str, Any] = {
            "id": rid,
            "node_id": f"CR_{rid}",
            "head_sha": body["head_sha"],
            "external_id": body.get("external_id", ""),
            "url": self.url(f"/repos/{repo.full_name}/check-runs/{rid}"),
            "html_url": f"https://github.com/{repo.full_name}/runs/{rid}",
            "details_url": body.get("details_url"),
            "status": "queued",
            "conclusion": None,
            "started_at": _iso(self.now()),
            "completed_at": None,
            "output": {"title": None, "summary": None, "text": None},
            "name": body["name"],
            "check_suite": {"id": rid + 1},
            "app": self._app_json(app) if app else None,
            "pull_requests": [],
            "_annotations": [],
        }
        repo.check_runs[rid] = run
        self._update_run(run, body)
        return 201, self._check_json(repo, run)

    def _update_run(self, run: dict[str, Any], body: dict[str, Any]) -> None:
        output = body.get("output") or {}
        if len(output.get("annotations") or []) > 50:
            raise HttpError(422, "Only 50 annotations may be sent in one request")
        status = body.get("status")
        if body.get("conclusion") and status in (None, "completed"):
            status = "completed"
        if status == "completed" and not body.get("conclusion"):
            raise HttpError(
                422,
                "Validation Failed",
                errors=[{"resource": "CheckRun", "field": "conclusion", "code": "missing_field"}],
            )
        if status:
            run["status"] = status
        if body.get("conclusion"):
            run["conclusion"] = body["conclusion"]
            run["completed_at"] = body.get("completed_at") or _iso(self.now())
        for k in ("name", "details_url", "external_id", "started_at"):
            if k in body:
                run[k] = body[k]
        for k in ("title", "summary", "text"):
            if k in output:
                run["output"][k] = output[k]
        run["_annotations"].extend(output.get("annotations") or [])

    def op_checks_update(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        run = repo.check_runs.get(int(ctx.params["check_run_id"]))
        if run is None:
            raise HttpError(404, "Not Found")
        self._update_run(run, ctx.body)
        return self._check_json(repo, run)

    def op_checks_get(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        run = repo.check_runs.get(int(ctx.params["check_run_id"]))
        if run is None:
            raise HttpError(404, "Not Found")
        return self._check_json(repo, run)

    def op_checks_list_for_ref(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        sha = repo.resolve(ctx.params["ref"])
        runs = [
            self._check_json(repo, r)
            for r in repo.check_runs.values()
            if r["head_sha"] == sha and ctx.q("check_name") in (None, r["name"])
        ]
        status, chunk, headers = self._page(
            ctx, runs, f"/repos/{repo.full_name}/commits/{ctx.params['ref']}/check-runs"
        )
        return status, {"total_count": len(runs), "check_runs": chunk}, headers

    def op_checks_list_annotations(self, ctx: Ctx) -> Any:
        repo = ctx.repo
        assert repo is not None
        run = repo.check_runs.get(int(ctx.params["check_run_id"]))
        if run is None:
            raise HttpError(404, "Not Found")
        blob = f"https://github.com/{repo.full_name}/blob/{run['head_sha']}/"
        items = [
            {
                "path": a["path"],
                "start_line": a["start_line"],
                "end_line": a["end_line"],
                "start_column": a.get("start_column"),
                "end_column": a.get("end_column"),
                "annotation_level": a.get("annotation_level"),
                "title": a.get("title"),
                "message": a.get("message"),
                "raw_details": a.get("raw_details"),
                "blob_href": blob + a["path"],
            }
            for a in run["_annotations"]
        ]
        return self._page(ctx, items, f"/repos/{repo.full_name}/check-runs/{run['id']}/annotations")

    def annotations(self, repo: FakeRepo, run_id: int) -> list[dict[str, Any]]:
        """Every annotation a check run received (GitHub accumulates them across updates)."""
        return list(repo.check_runs[run_id]["_annotations"])


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub; the test fails if any request or response broke GitHub's contract."""
    fake = FakeGitHub().start()
    try:
        yield fake
    finally:
        fake.stop()
    fake.assert_clean()


__all__ = [
    "FakeApp",
    "FakeGitHub",
    "FakeInstallation",
    "FakeRepo",
    "HttpError",
    "Push",
    "fake_github",
    "git_hash",
    "make_key_pair",
    "webhooks",
]
