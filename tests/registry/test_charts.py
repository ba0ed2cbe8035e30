"""bot.registry.charts: Helm repositories and OCI charts on loopback, version ranges, and archives
that try to escape, link, or explode."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.registry import MemoryStore, Registry, RegistryConfig
from bot.registry.charts import (
    FILE_CAP,
    HELM_LAYER,
    UNPACKED_CAP,
    ChartError,
    Charts,
    constraint,
    read_archive,
    semver,
)
from tests.support.helmrepo import HelmRepo, big_index, chart, serve, tgz

HOST = "charts.example.test"


@pytest.fixture
def helm_repo(tmp_path: Path) -> Iterator[HelmRepo]:
    yield from serve(tmp_path / "srv", prefix="stable")


def _charts(*mappings: dict, store: MemoryStore | None = None) -> tuple[Registry, Charts]:
    merged: dict = {"registries": {}}
    for m in mappings:
        merged["registries"].update(m["registries"])
    reg = Registry(RegistryConfig.from_mapping(merged), store=store or MemoryStore())
    return reg, Charts(reg.client, reg.cache.store, reg.total_s)


# --- Helm repositories ----------------------------------------------------------------------------


def test_index_range_relative_url_values_templates_and_subcharts(helm_repo: HelmRepo) -> None:
    sub = chart("common", "2.0.0", values="image:\n  repository: bitnami/os-shell\n  tag: '12'\n")[3]
    helm_repo.add(chart("pg", "1.2.3", values="image: {repository: a}\n", app_version="15.5",
                        templates={"sts.yaml": 'image: {{ printf "v%s" .Chart.AppVersion }}'},
                        subcharts={"common-2.0.0": sub}))  # fmt: skip
    helm_repo.add(chart("pg", "1.3.0-rc.1", values="x: 1\n"))
    helm_repo.add(chart("pg", "2.0.0", values="x: 2\n"))
    reg, charts = _charts(helm_repo.config_mapping(HOST))
    with reg:
        got = charts.fetch(f"https://{HOST}/stable", "pg", "^1.0.0")
    assert (got.name, got.version, got.app_version) == ("pg", "1.2.3", "15.5")  # no pre-release, no 2.x
    assert got.values == "image: {repository: a}\n"
    assert "printf" in got.templates["templates/sts.yaml"]
    assert got.subcharts["common"].values.startswith("image:")
    assert got.digest.startswith("sha256:")
    assert any(r.endswith("/stable/pg-1.2.3.tgz") for r in helm_repo.requests)


def test_absolute_urls_and_the_cache(tmp_path: Path) -> None:
    repo = HelmRepo(tmp_path / "srv", prefix="stable", absolute_urls=True)
    try:
        repo.add(chart("pg", "1.0.0", values="a: 1\n"), path="archives")
        store = MemoryStore()
        # The absolute URL names 127.0.0.1:PORT, which the operator configured as the endpoint.
        mapping = repo.config_mapping(HOST)
        mapping["registries"][repo.url.removeprefix("http://")] = {"endpoint": repo.url}
        reg, charts = _charts(mapping, store=store)
        with reg:
            assert charts.fetch(f"https://{HOST}/stable", "pg", "1.0.0").values == "a: 1\n"
        seen = len(repo.requests)
        reg2, charts2 = _charts(mapping, store=store)  # another process, the same shared store
        with reg2:
            assert charts2.fetch(f"https://{HOST}/stable", "pg", "1.0.0").values == "a: 1\n"
        assert len(repo.requests) == seen  # resolution and chart both came from the store
    finally:
        repo.stop()


def test_digest_mismatch_missing_chart_and_version(helm_repo: HelmRepo) -> None:
    helm_repo.add(chart("pg", "1.0.0"), digest="0" * 64)
    reg, charts = _charts(helm_repo.config_mapping(HOST))
    with reg:
        with pytest.raises(ChartError) as bad:
            charts.fetch(f"https://{HOST}/stable", "pg", "1.0.0")
        assert bad.value.code == "invalid" and "digest" in bad.value.detail
        with pytest.raises(ChartError) as missing:
            charts.fetch(f"https://{HOST}/stable", "nope", "1.0.0")
        assert missing.value.code == "not-found"
        with pytest.raises(ChartError) as none:
            charts.fetch(f"https://{HOST}/stable", "pg", ">=3")
        assert none.value.code == "not-found"


def test_unreachable_repository_is_an_error_not_a_crash() -> None:
    reg, charts = _charts({"registries": {HOST: {"endpoint": "http://127.0.0.1:9"}}})
    with reg, pytest.raises(ChartError) as err:
        charts.fetch(f"https://{HOST}/stable", "pg", "1.0.0")
    assert err.value.code == "unreachable"


def test_plain_http_to_an_unconfigured_host_and_internal_addresses_are_refused() -> None:
    reg, charts = _charts({"registries": {}})
    with reg:
        for repo in ("http://charts.example.test/x", "https://169.254.169.254/x", "https://127.0.0.1:8443/x"):
            with pytest.raises(ChartError) as err:
                charts.fetch(repo, "pg", "1.0.0")
            assert err.value.code == "unreachable", repo


# --- OCI ------------------------------------------------------------------------------------------


def test_oci_chart_from_the_local_registry(registry_open) -> None:
    data = chart("redis", "19.0.1", values="image:\n  repository: bitnami/redis\n  tag: 7.2.4\n")[3]
    layer = registry_open.push_blob("charts/redis", data)
    config = json.dumps({"name": "redis", "version": "19.0.1"}).encode()
    cfg = registry_open.push_blob("charts/redis", config)
    helm_config = "application/vnd.cncf.helm.config.v1+json"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": helm_config, "digest": cfg, "size": len(config)},
        "layers": [{"mediaType": HELM_LAYER, "digest": layer, "size": len(data)}],
    }).encode()  # fmt: skip
    digest = registry_open.push_manifest(
        "charts/redis", "19.0.1", manifest, "application/vnd.oci.image.manifest.v1+json"
    )
    reg, charts = _charts(registry_open.config_mapping())
    with reg:
        got = charts.fetch(f"oci://{registry_open.host}/charts", "redis", "19.0.1")
        assert got.digest == digest and "bitnami/redis" in got.values
        with pytest.raises(ChartError) as err:
            charts.fetch(f"oci://{registry_open.host}/charts", "redis", "9.9.9")
        assert err.value.code == "not-found"
        assert charts.fetch(f"oci://{registry_open.host}/charts", "redis", "19.x").version == "19.0.1"
        with pytest.raises(ChartError) as rng:
            charts.fetch(f"oci://{registry_open.host}/charts", "redis", "^20")
        assert rng.value.code == "not-found"


# --- hostile archives -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "links", "code"),
    [
        ({"pg/Chart.yaml": "name: pg\n", "pg/../../etc/passwd": "x"}, None, "hostile"),
        ({"/etc/pg/values.yaml": "x"}, None, "hostile"),
        ({"pg/Chart.yaml": "name: pg\n"}, {"pg/values.yaml": "/etc/passwd"}, "hostile"),
        ({"pg/values.yaml": "a" * (FILE_CAP + 1)}, None, "too-large"),
    ],
)
def test_hostile_archives_are_refused(files: dict, links: dict | None, code: str) -> None:
    with pytest.raises(ChartError) as err:
        read_archive(tgz(files, links=links), "https://x", "pg", "1.0.0", "sha256:x")
    assert err.value.code == code


def test_hard_links_are_refused() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("pg/values.yaml")
        info.type, info.linkname = tarfile.LNKTYPE, "pg/Chart.yaml"
        tar.addfile(info)
    with pytest.raises(ChartError) as err:
        read_archive(gzip.compress(raw.getvalue()), "https://x", "pg", "1.0.0", "sha256:x")
    assert err.value.code == "hostile"


def test_a_gzip_bomb_stops_at_the_unpacked_cap() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        size = UNPACKED_CAP + 1024 * 1024
        info = tarfile.TarInfo("pg/filler.bin")  # not a kept file: skipped, yet still decompressed
        info.size = size
        tar.addfile(info, io.BytesIO(b"\0" * size))
    bomb = gzip.compress(raw.getvalue(), compresslevel=9)
    assert len(bomb) < 100 * 1024  # a few dozen KiB that unpack past the cap
    with pytest.raises(ChartError) as err:
        read_archive(bomb, "https://x", "pg", "1.0.0", "sha256:x")
    assert err.value.code == "too-large"


def test_the_unpacked_cap_counts_a_sub_chart_archive_with_its_parent() -> None:
    """One budget for the whole chart: a parent and its bundled sub-chart that each unpack to
    under the cap, but together past it, are refused."""

    def filled(top: str, size: int, extra: dict[str, bytes] | None = None) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for path, data in {f"{top}/Chart.yaml": f"name: {top}\n".encode(), **(extra or {})}.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(f"{top}/filler.bin")
            info.size = size
            tar.addfile(info, io.BytesIO(b"\0" * size))
        return gzip.compress(raw.getvalue(), compresslevel=9)

    half = UNPACKED_CAP * 6 // 10
    sub = filled("sub", half)
    with pytest.raises(ChartError) as err:
        read_archive(
            filled("pg", half, {"pg/charts/sub-1.0.0.tgz": sub}), "https://x", "pg", "1.0.0", "sha256:x"
        )
    assert err.value.code == "too-large"
    alone = read_archive(
        filled("pg", half // 2, {"pg/charts/sub-1.0.0.tgz": sub}), "https://x", "pg", "1", "d"
    )
    assert set(alone.subcharts) == {"sub"}


def test_not_an_archive() -> None:
    with pytest.raises(ChartError) as err:
        read_archive(b"<html>nope</html>", "https://x", "pg", "1.0.0", "sha256:x")
    assert err.value.code == "invalid"


def test_nested_subchart_archives_are_read_within_the_same_caps() -> None:
    inner = chart("common", "2.0.0", values="a: 1\n")[3]
    outer = chart("pg", "1.0.0", subcharts={"common-2.0.0": inner})[3]
    got = read_archive(outer, "https://x", "pg", "1.0.0", "sha256:" + hashlib.sha256(outer).hexdigest())
    assert got.subcharts["common"].values == "a: 1\n"
    evil_inner = tgz({"common/../../x": "y"})
    evil = chart("pg", "1.0.0", subcharts={"common-2.0.0": evil_inner})[3]
    with pytest.raises(ChartError):
        read_archive(evil, "https://x", "pg", "1.0.0", "sha256:x")


# --- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        ("^1.2.0", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.9", "1.3.0-rc.1"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        (">=1.0.0 <2.0.0", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
        (">= 1.0, < 2", ["1.5.0"], ["2.1.0"]),
        ("1.x", ["1.0.0", "1.8.1"], ["2.0.0"]),
        ("*", ["0.1.0", "9.0.0"], ["1.0.0-alpha"]),
        ("1.0.0 - 1.4.0", ["1.4.0"], ["1.4.1"]),
        ("^0.2.3", ["0.2.9"], ["0.3.0"]),
        ("<1.0.0 || >=3.0.0", ["0.5.0", "3.1.0"], ["2.0.0"]),
        (">=1.0.0-0", ["1.1.0-rc.1"], []),
    ],
)
def test_constraints(spec: str, yes: list[str], no: list[str]) -> None:
    test = constraint(spec)
    for v in yes:
        s = semver(v)
        assert s is not None and test(s, v), (spec, v)
    for v in no:
        s = semver(v)
        assert s is not None and not test(s, v), (spec, v)


def test_a_repository_in_an_allowed_range_may_use_plain_http_on_any_port(helm_repo: HelmRepo) -> None:
    helm_repo.add(chart("pg", "1.0.0", values="a: 1\n"))
    url = f"{helm_repo.url}/stable"  # http://127.0.0.1:PORT/stable
    reg, charts = _charts({"registries": {}})
    with reg, pytest.raises(ChartError):
        charts.fetch(url, "pg", "1.0.0")  # loopback, plain http: refused by default
    trusted = Registry(
        RegistryConfig.from_mapping({"network": {"allow": ["127.0.0.0/8"]}}), store=MemoryStore()
    )
    with trusted:
        got = Charts(trusted.client, trusted.cache.store, trusted.total_s).fetch(url, "pg", "1.0.0")
    assert got.values == "a: 1\n"


def test_a_private_repository_gets_its_configured_credentials_only(tmp_path: Path) -> None:
    repo = HelmRepo(tmp_path / "srv", prefix="private", auth=("reader", "s3cret"))
    try:
        repo.add(chart("pg", "1.0.0", values="a: 1\n"))
        entry = {"endpoint": repo.url, "username": "reader", "password_env": "CHARTS_PASSWORD"}
        config = RegistryConfig.from_mapping({"registries": {HOST: entry}}, env={"CHARTS_PASSWORD": "s3cret"})
        with Registry(config, store=MemoryStore()) as reg:
            got = Charts(reg.client, reg.cache.store, reg.total_s).fetch(
                f"https://{HOST}/private", "pg", "1.0.0"
            )
        assert got.values == "a: 1\n"
        anonymous = RegistryConfig.from_mapping({"registries": {HOST: {"endpoint": repo.url}}})
        with Registry(anonymous, store=MemoryStore()) as reg, pytest.raises(ChartError) as err:
            Charts(reg.client, reg.cache.store, reg.total_s).fetch(f"https://{HOST}/private", "pg", "1.0.0")
        assert err.value.code == "unreachable" and "401" in err.value.detail
    finally:
        repo.stop()


def test_only_the_charts_own_section_of_a_large_index_is_parsed() -> None:
    from bot.registry.charts import _index_entries

    filler = "".join(
        f"  c{i}:\n  - apiVersion: v2\n    name: c{i}\n    version: 1.0.{i}\n"
        f"    urls:\n    - c{i}-1.0.{i}.tgz\n"
        for i in range(20_000)
    )
    index = (
        "apiVersion: v1\nentries:\n"
        + filler
        + "  pg:\n  - apiVersion: v2\n    name: pg\n    version: 1.2.3\n"
        "    digest: abc\n    urls:\n    - https://cdn.example/pg-1.2.3.tgz\n"
        + filler.replace("  c", "  d")
        + "generated: '2026-12-01T00:00:00Z'\n"
    ).encode()
    assert len(index) > 4_000_000
    assert _index_entries(index, "pg") == [
        {"version": "1.2.3", "url": "https://cdn.example/pg-1.2.3.tgz", "digest": "abc", "appVersion": None}
    ]
    # Another layout (JSON is YAML too): parsed whole.
    as_json = json.dumps({"apiVersion": "v1", "entries": {"pg": [{"version": "2.0.0", "urls": ["pg.tgz"]}]}})
    assert [e["version"] for e in _index_entries(as_json.encode(), "pg")] == ["2.0.0"]


def test_a_repository_host_name_that_resolves_into_an_allowed_range_is_trusted_like_an_address(
    helm_repo: HelmRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for image registries, ``network.allow`` is about where a name resolves, checked at
    connect time on the one resolution (no rebinding): a name answering only inside the range
    may use plain http on any port; one answering outside it is refused."""
    import socket

    from tests.registry.test_guard import fake_resolver

    lookups: list[str] = []
    table = {
        "charts.internal.test": ["127.0.0.1"],
        "mixed.internal.test": ["127.0.0.1", "10.9.9.9"],
        "outside.internal.test": ["10.9.9.9"],
        "public.internal.test": ["93.184.216.34"],  # refused before any connection is made
    }
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver(table, lookups))
    helm_repo.add(chart("pg", "1.0.0", values="a: 1\n"))
    port = helm_repo.url.rsplit(":", 1)[1]
    config = RegistryConfig.from_mapping({"network": {"allow": ["127.0.0.0/8"]}})
    with Registry(config, store=MemoryStore()) as reg:
        charts = Charts(reg.client, reg.cache.store, reg.total_s)
        got = charts.fetch(f"http://charts.internal.test:{port}/stable", "pg", "1.0.0")
        assert got.values == "a: 1\n"
        for host in ("mixed.internal.test", "outside.internal.test", "public.internal.test"):
            with pytest.raises(ChartError) as err:
                charts.fetch(f"http://{host}:{port}/stable", "pg", "1.0.0")
            assert err.value.code == "unreachable", host
    closed = RegistryConfig.from_mapping({"network": {"allow": ["10.0.0.0/8"]}})
    with Registry(closed, store=MemoryStore()) as reg, pytest.raises(ChartError) as err:
        Charts(reg.client, reg.cache.store, reg.total_s).fetch(
            f"http://charts.internal.test:{port}/stable", "pg", "1.0.0"
        )
    assert err.value.code == "unreachable"


_DEEP_BLOCK = "a:\n" + "".join(f"{' ' * i}b:\n" for i in range(1, 3000))


@pytest.mark.parametrize("text", ["[" * 200_000, "- " * 100_000 + "x", _DEEP_BLOCK])
def test_a_hostile_nesting_in_chart_yaml_is_refused_not_a_crash(text: str) -> None:
    """Chart bytes are untrusted and this layer has no nesting pre-check: they are read with the
    pure-Python loader, where deep nesting is an error, never libyaml's recursive composer."""
    import yaml

    from bot.registry import charts

    with pytest.raises(yaml.YAMLError):
        charts._load(text)


def test_a_large_index_is_streamed_and_only_the_charts_section_is_held(helm_repo: HelmRepo) -> None:
    """Issue 12 §2 (stream, don't hold twice): a 32 MB index read through the client over a real
    loopback HTTP stream holds the chart's own section, never the index (let alone twice)."""
    import tracemalloc

    import yaml

    helm_repo.add(chart("pg", "1.2.3", values="image: {repository: a}\n"))
    section = yaml.safe_dump({"entries": helm_repo.entries}, sort_keys=False).removeprefix("entries:\n")
    index = big_index(section, 32 * 1024 * 1024)
    size = len(index)
    assert size > 30 * 1024 * 1024 and index.count(b"\n  pg:\n") == 1
    (helm_repo.dir / "index.yaml").write_bytes(index)
    del index
    reg, charts = _charts(helm_repo.config_mapping(HOST))
    with reg:
        tracemalloc.start()
        try:
            got = charts.fetch(f"https://{HOST}/stable", "pg", "^1.0.0")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert (got.name, got.version, got.values) == ("pg", "1.2.3", "image: {repository: a}\n")
    # Before: the decoded pieces in a list, then joined (twice the index). Now: the section, a
    # piece or two and the client's own working set (about 0.9 MB measured), whatever the size.
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes for a {size:,}-byte index"


def test_an_index_of_another_layout_is_held_and_parsed_whole(helm_repo: HelmRepo) -> None:
    """JSON (or flow-style) indexes cannot be streamed: the reader holds the document (once, in
    one bytearray) and parses it whole, as before."""
    helm_repo.add(chart("pg", "1.2.3", values="a: 1\n"))
    as_json = {"apiVersion": "v1", "entries": helm_repo.entries}
    (helm_repo.dir / "index.yaml").write_text(json.dumps(as_json, indent=None))
    reg, charts = _charts(helm_repo.config_mapping(HOST))
    with reg:
        assert charts.fetch(f"https://{HOST}/stable", "pg", "^1").values == "a: 1\n"
        with pytest.raises(ChartError) as err:
            charts.fetch(f"https://{HOST}/stable", "redis", "1.0.0")
    assert err.value.code == "not-found"


@pytest.mark.parametrize("piece", [1, 5, 4096, 1 << 30])
@pytest.mark.parametrize(
    "layout",
    ["helm", "chart-first", "last-unterminated", "absent", "crlf", "quoted", "comments", "json", "flow",
     "indent4", "long-head"],
)  # fmt: skip
def test_the_streamed_index_reads_what_a_whole_parse_reads(layout: str, piece: int) -> None:
    """Whatever the layout and however the body is cut into pieces, the entries the reader finds
    are those of a whole parse of the document."""
    import yaml

    from bot.registry.charts import IndexReader, _entry_list

    def entry(n: str, v: str) -> str:
        return f"  - apiVersion: v2\n    name: {n}\n    version: {v}\n    urls:\n    - {n}-{v}.tgz\n"

    def helm(charts: list[tuple[str, str]], tail: str = "generated: x\n") -> str:
        return "apiVersion: v1\nentries:\n" + "".join(f"  {n}:\n" + entry(n, v) for n, v in charts) + tail

    one = "  pg:\n  - version: 5.0.0\n    urls: [p.tgz]\n"
    docs = {
        "helm": helm([("a", "1.0.0"), ("pgx", "1.0.0"), ("pg", "2.0.0"), ("z", "3.0.0")]),
        "chart-first": helm([("pg", "1.0.0"), ("b", "1.0.0")]),
        "last-unterminated": helm([("a", "1.0.0"), ("pg", "1.0.0")], tail="").rstrip("\n"),
        "absent": helm([("a", "1.0.0")]),
        "crlf": helm([("a", "1.0.0"), ("pg", "1.0.0")]).replace("\n", "\r\n"),
        "quoted": helm([("a", "1.0.0"), ("pg", "9.0.0")]).replace("  pg:", "  'pg':"),
        "comments": "apiVersion: v1\nentries:\n  # first\n\n  a:\n  - version: 1.0.0\n    urls: [a]\n" + one,
        "json": json.dumps(
            {"apiVersion": "v1", "entries": {"pg": [{"version": "2.0.0", "urls": ["pg.tgz"]}]}}
        ),
        "flow": "apiVersion: v1\nentries: {pg: [{version: 3.0.0, urls: [x.tgz]}]}\n",
        "indent4": "apiVersion: v1\nentries:\n    pg:\n    - version: 4.0.0\n      urls: [x.tgz]\n",
        "long-head": "apiVersion: v1\n" + "#" * 5000 + "\nentries:\n" + one,
    }
    data = docs[layout].encode()
    want = _entry_list(yaml.safe_load(docs[layout]), "pg")
    assert want or layout == "absent"
    reader = IndexReader("pg")
    for i in range(0, len(data), piece):
        reader.feed(data[i : i + piece])
    assert reader.entries() == want


def test_a_streamed_index_past_its_cap_is_refused(
    helm_repo: HelmRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap holds while streaming: the read stops there, whatever the reader keeps."""
    from bot.registry import charts as charts_mod

    helm_repo.add(chart("pg", "1.2.3"))
    index = (helm_repo.dir / "index.yaml").read_bytes()
    monkeypatch.setattr(charts_mod, "INDEX_CAP", len(index) - 1)
    reg, charts = _charts(helm_repo.config_mapping(HOST))
    with reg, pytest.raises(ChartError) as err:
        charts.fetch(f"https://{HOST}/stable", "pg", "1.2.3")
    assert err.value.code == "too-large"
