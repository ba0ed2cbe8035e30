"""The reference parser against Docker's own test tables, plus properties and the free-text detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bot.reference import Reference, ReferenceError, is_digest, is_name, is_tag, parse, qualified

CASES = json.loads((Path(__file__).parent / "fixtures" / "reference_cases.json").read_text())
VALID = [c for c in CASES if c["valid"]]
INVALID = [c for c in CASES if not c["valid"]]
D64 = "sha256:" + "ab" * 32


def _id(case: dict) -> str:
    return case["input"][:60] or "<empty>"


def test_fixture_is_complete():
    assert len(CASES) == 241
    assert len(VALID) == 169
    assert len(INVALID) == 72


@pytest.mark.parametrize("case", VALID, ids=_id)
def test_valid_case(case):
    ref = parse(case["input"])
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        case["domain"],
        case["path"],
        case["tag"],
        case["digest"],
    )
    assert str(ref) == case["normalized"]
    assert ref.docker_ref() == case["docker_ref"]
    assert ref.familiar() == case["familiar"]
    assert ref.name == f"{case['domain']}/{case['path']}"


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid_case_has_dockers_message(case):
    with pytest.raises(ReferenceError) as exc:
        parse(case["input"])
    assert str(exc.value) == case["error"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # cases the upstream tables do not cover, messages as go-digest words them
        ("nginx@sha256:" + "F" * 64, "invalid checksum digest format"),
        ("nginx@sha256:" + "a" * 63, "invalid checksum digest length"),
        # Docker's quirk: the lowercase check runs on everything before the first ':'
        (
            "nginx@SHA256:" + "a" * 64,
            "invalid reference format: repository name (library/nginx@SHA256) must be lowercase",
        ),
        ("example.com/app:1@SHA256:" + "a" * 64, "invalid checksum digest format"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("nginx:tag\n", "invalid reference format"),
        ("nginx\n", "invalid reference format"),
        ("ngïnx", "invalid reference format"),
        ("nginx:ｔag", "invalid reference format"),
        ("nginx:" + "a" * 129, "invalid reference format"),
        ("example.com/" + "a" * 256, "repository name must not be more than 255 characters"),
        ("ubuntu:22.04 ", "invalid reference format"),
        # upstream returns an empty domain here (its split and grammar disagree); we refuse it
        ("a_b.com/app:1", "invalid reference format"),
        ("0_0.0/0", "invalid reference format"),
        # uppercase first component is a domain; the grammar then fails, lowercase would match
        ("Foo_bar/x", "repository name must be lowercase"),
    ],
)
def test_more_errors(text, error):
    with pytest.raises(ReferenceError) as exc:
        parse(text)
    assert str(exc.value) == error


def test_reference_error_is_a_value_error():
    assert issubclass(ReferenceError, ValueError)


@pytest.mark.parametrize(
    ("text", "normalized", "familiar", "familiar_name"),
    [
        ("nginx", "docker.io/library/nginx", "nginx", "nginx"),
        ("nginx:1.27", "docker.io/library/nginx:1.27", "nginx:1.27", "nginx"),
        ("library/nginx", "docker.io/library/nginx", "nginx", "nginx"),
        ("docker.io/nginx", "docker.io/library/nginx", "nginx", "nginx"),
        (
            "index.docker.io/bitnami/kubectl:1.31",
            "docker.io/bitnami/kubectl:1.31",
            "bitnami/kubectl:1.31",
            "bitnami/kubectl",
        ),
        ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b", "library/a/b"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1", "ghcr.io/org/app:v1", "ghcr.io/org/app"),
        ("localhost:5000/app", "localhost:5000/app", "localhost:5000/app", "localhost:5000/app"),
        (
            "gcr.io/library/busybox",
            "gcr.io/library/busybox",
            "gcr.io/library/busybox",
            "gcr.io/library/busybox",
        ),
        # deliberate difference from Docker, whose "0.0/app" would read back as registry 0.0
        ("docker.io/0.0/app:1", "docker.io/0.0/app:1", "docker.io/0.0/app:1", "docker.io/0.0/app"),
        (
            "docker.io/localhost/app",
            "docker.io/localhost/app",
            "docker.io/localhost/app",
            "docker.io/localhost/app",
        ),
    ],
)
def test_normalisation_and_familiar(text, normalized, familiar, familiar_name):
    ref = parse(text)
    assert str(ref) == normalized
    assert ref.familiar() == familiar
    assert ref.familiar_name() == familiar_name


def test_docker_ref_digest_wins_over_tag():
    ref = parse(f"nginx:1.27@{D64}")
    assert str(ref) == f"docker.io/library/nginx:1.27@{D64}"
    assert ref.docker_ref() == f"docker.io/library/nginx@{D64}"
    assert parse("nginx").docker_ref() == "docker.io/library/nginx:latest"


def test_with_tag_and_digest():
    ref = parse("nginx:1.27")
    assert str(ref.with_tag("1.28")) == "docker.io/library/nginx:1.28"
    assert str(ref.with_tag(None)) == "docker.io/library/nginx"
    pinned = ref.with_digest(D64)
    assert str(pinned) == f"docker.io/library/nginx:1.27@{D64}"
    assert pinned.with_digest(None) == ref
    assert ref.tag == "1.27"  # frozen: the original is untouched
    for bad in ("", "-x", "a b", "a" * 129, "<script>"):
        with pytest.raises(ReferenceError):
            ref.with_tag(bad)
    for bad in ("sha256:abc", "sha512:" + "a" * 128, "sha256:" + "A" * 64, "", "sha256:"):
        with pytest.raises(ReferenceError):
            ref.with_digest(bad)


def test_reference_is_hashable_and_comparable():
    assert parse("nginx") == parse("docker.io/library/nginx")
    assert len({parse("nginx"), parse("library/nginx"), parse("index.docker.io/nginx")}) == 1
    assert parse("nginx") == Reference("docker.io", "library/nginx", None, None)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1.27", True),
        ("latest", True),
        ("_", True),
        ("A_b.c-D", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        (".hidden", False),
        ("-x", False),
        ("a/b", False),
        ("a:b", False),
        ("1.0\n", False),
        ("ｔag", False),
        ("<script>", False),
    ],
)
def test_is_tag(text, ok):
    assert is_tag(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (D64, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "a" * 65, False),
        ("sha512:" + "a" * 128, False),
        ("sha256:" + "a" * 64 + "\n", False),
        ("a" * 64, False),
    ],
)
def test_is_digest(text, ok):
    assert is_digest(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("docker.io/library/nginx", True),
        ("ghcr.io/org/app", True),
        ("localhost:5000/a/b", True),
        ("nginx", False),  # valid, but not the normalised form
        ("library/nginx", False),
        ("index.docker.io/library/nginx", False),
        ("docker.io/library/nginx:1", False),
        (f"docker.io/library/nginx@{D64}", False),
        ("docker.io/library/Nginx", False),
        ("", False),
    ],
)
def test_is_name(text, ok):
    assert is_name(text) is ok


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("ghcr.io/org/app:v1.2.3", "ghcr.io/org/app:v1.2.3"),
        ("docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27"),
        ("docker.io/nginx:1.27", "docker.io/library/nginx:1.27"),
        ("index.docker.io/bitnami/kubectl:1.31", "docker.io/bitnami/kubectl:1.31"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        (f"quay.io/prometheus/node-exporter@{D64}", f"quay.io/prometheus/node-exporter@{D64}"),
        (f"quay.io/a/b:1@{D64}", f"quay.io/a/b:1@{D64}"),
        ("localhost/app:dev", "localhost/app:dev"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
        ("registry.example.com:8443/team/app:2024.01.15", "registry.example.com:8443/team/app:2024.01.15"),
        ("xn--n3h.com/myimage:1", "xn--n3h.com/myimage:1"),
    ],
)
def test_qualified_fires(text, normalized):
    ref = qualified(text)
    assert ref is not None
    assert str(ref) == normalized


@pytest.mark.parametrize(
    "text",
    [
        # no explicit registry, or no tag/digest
        "nginx:1.27",
        "bitnami/kubectl:1.31",
        "library/nginx:1.27",
        "ghcr.io/org/app",
        "localhost:5000/app",
        "Foo/bar:1",  # uppercase first component is a Docker domain, but not a host we trust here
        "[::1]:5000/app:1",
        # URLs
        "http://ghcr.io/org/app:v1",
        "https://example.com/path:8080",
        "//example.com/a:b",
        "example.com:443",
        "https://github.com/docker/docker",
        "s3://bucket.example.com/key:1",
        "ftp://x.y/z:1",
        "example.com/a:b?x=1",
        "example.com/a:b#frag",
        # paths and files
        "/usr/local/bin:/usr/bin",
        "./config.d/app:1",
        "../a.b/c:d",
        "conf.d/app:1",
        "1.2/app:3",
        "C:\\Users\\me",
        "/var/run/docker.sock:/var/run/docker.sock",
        "$HOME/.docker/config.json",
        # emails, credentials, key=value, flags
        "john.doe@example.com",
        "user:pass@registry.example.com/app:1",
        "IMAGE=ghcr.io/org/app:v1",
        "--image=ghcr.io/org/app:v1",
        "-Dfoo=bar.baz",
        "ghcr.io/org/app:v1,",
        "'ghcr.io/org/app:v1'",
        '"ghcr.io/org/app:v1"',
        "(ghcr.io/org/app:v1)",
        "ghcr.io/org/app:v1.",  # end of a sentence
        "ghcr.io/org/app:v1-",
        # versions, times, hosts, addresses
        "1.2.3",
        "v1.2.3-rc.1",
        "12:30:00",
        "10.0.0.1:8080",
        "redis.default.svc.cluster.local:6379",
        "redis.default.svc:6379/0",
        "postgres://user@db.example.com:5432/app",
        "github.com/org/mod@v1.2.3",
        "sha256:" + "a" * 64,
        # whitespace and junk
        "ghcr.io/org/app: v1",
        " ghcr.io/org/app:v1",
        "ghcr.io/org/app:v1\n",
        "ghcr.io/org/app:v1 && echo",
        "ghcr.io/org/App:v1",
        "",
        "/",
        ":",
        "@",
        "a.b/",
        "ghcr.io//app:v1",
        "ghcr.io/org/app:" + "a" * 200,
        "${REGISTRY}/app:1",
        "{{ .Values.image }}",
    ],
)
def test_qualified_rejects(text):
    assert qualified(text) is None


# -- properties ----------------------------------------------------------------------------------

_LOWER = "abcxyz0189"
_alnum = st.text(alphabet=_LOWER, min_size=1, max_size=6)
_sep = st.sampled_from([".", "_", "__", "-", "--", "---"])
_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(_sep, _alnum), max_size=2),
)
_label = st.text(alphabet="abzAZ09-", min_size=1, max_size=6).filter(lambda x: x[0] != "-" and x[-1] != "-")
_domain = st.one_of(
    st.none(),
    st.sampled_from(
        ["docker.io", "index.docker.io", "ghcr.io", "localhost", "localhost:5000", "Foo", "[::1]:5000"]
    ),
    st.builds(
        lambda labels, port: ".".join(labels) + port,
        st.lists(_label, min_size=1, max_size=3),
        st.sampled_from(["", ":5000", ":1"]),
    ),
)
_tag = st.one_of(
    st.none(),
    st.builds(
        str.__add__,
        st.text(alphabet="aZ0_", min_size=1, max_size=1),
        st.text(alphabet="aZ09_.-", max_size=20),
    ),
)
_digest = st.one_of(
    st.none(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__)
)


@st.composite
def reference_texts(draw: st.DrawFn) -> str:
    domain = draw(_domain)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=4)))
    tag, digest = draw(_tag), draw(_digest)
    text = (f"{domain}/" if domain else "") + path
    return text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@given(reference_texts())
def test_parse_is_stable(text):
    try:
        ref = parse(text)
    except ReferenceError:
        assume(False)
        raise
    assert parse(str(ref)) == ref
    assert parse(ref.familiar()) == ref
    docker = parse(ref.docker_ref())
    assert docker.name == ref.name
    assert docker.digest == ref.digest
    assert is_name(ref.name)
    assert ref.tag is None or is_tag(ref.tag)
    assert ref.digest is None or is_digest(ref.digest)
    assert ref.domain != "index.docker.io"
    assert ref.domain != "docker.io" or "/" in ref.path


_GRAMMAR = "abcAZ019.:/@_-[]%~ \n" + "sha256"


@given(st.one_of(st.text(), st.text(alphabet=_GRAMMAR, max_size=80)))
def test_arbitrary_text_only_raises_reference_error(text):
    try:
        ref = parse(text)
    except ReferenceError as exc:
        assert str(exc)
        return
    assert isinstance(ref, Reference)
    assert parse(str(ref)) == ref


@given(st.one_of(st.text(), st.text(alphabet=_GRAMMAR, max_size=80), reference_texts()))
def test_qualified_never_raises_and_implies_parse(text):
    ref = qualified(text)
    if ref is not None:
        assert ref == parse(text)
        assert ref.tag is not None or ref.digest is not None
        assert not any(c.isspace() for c in text)


def test_long_hostile_inputs_terminate():
    # Backtracking traps for a naive port: long runs that almost match the grammar.
    for text in ("a" * 50_000 + "!", "a-" * 25_000 + "!", "a." * 25_000 + "/!", "a/" * 25_000 + ":"):
        with pytest.raises(ReferenceError):
            parse(text)
        assert qualified(text) is None
