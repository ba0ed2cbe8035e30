"""Reading repositories through the API: which files are fetched, the cost of an unchanged
rescan, truncated trees, size caps, per-blob caching with sibling dependencies, compare."""

from __future__ import annotations

import pytest

from bot.jobs.reader import scan_repository, wanted
from bot.scan import MAX_FILE_BYTES, scan_tree

BLOBS = r"/git/blobs/"


def refs_of(result):
    return sorted((r.path, r.reference) for r in result.refs)


def test_full_scan_matches_a_checkout_and_fetches_only_candidates(world, tmp_path):
    from tests.github.conftest import FILES

    s = world.github_app().session(world.inst.id, "octo-org/demo")
    result = scan_repository(s)
    for path, text in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    local = scan_tree(tmp_path)
    assert refs_of(result) == refs_of(local) != []
    assert result.sha == world.repo.refs["refs/heads/main"] and result.ref == "main"
    # README.md and src/main.py are never downloaded
    fetched = sorted(e.path.rsplit("/", 1)[-1] for e in world.fake.log if BLOBS in e.path)
    assert len(fetched) == result.fetched == 3


def test_unchanged_rescan_costs_no_rate_limit(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    first = scan_repository(s)
    world.fake.reset_log()
    again = scan_repository(s)
    assert refs_of(again) == refs_of(first)
    assert world.fake.count() == 0  # every GET revalidated: 304s only
    assert world.fake.count(include_304=True) == 3  # repository, ref, tree
    assert again.fetched == 0 and again.reused == 3


def test_one_changed_file_is_the_only_one_fetched(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    scan_repository(s)
    world.fake.push(world.repo, {"Dockerfile": "FROM alpine:3.20\n"})
    world.fake.reset_log()
    result = scan_repository(s)
    assert ("Dockerfile", "docker.io/library/alpine:3.20") in refs_of(result)
    assert result.fetched == 1 and result.reused == 2
    assert world.fake.count(path=BLOBS) == 1


def test_paths_limit_the_scan_to_a_push(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    push = world.fake.push(world.repo, {"docker-compose.yml": "services:\n  db:\n    image: postgres:16\n"})
    result = scan_repository(
        s, "octo-org/demo", ref=push.sha, paths=["docker-compose.yml", "gone.yaml", "README.md"]
    )
    assert refs_of(result) == [("docker-compose.yml", "docker.io/library/postgres:16")]
    assert result.sha == push.sha and world.fake.count(path=BLOBS) == 1
    assert world.fake.count(path=r"^/repos/octo-org/demo$") == 0  # a sha needs no default branch


def test_truncated_tree_is_walked(world):
    world.fake.push(
        world.repo,
        {
            f"k8s/app{i}/deploy.yaml": f"kind: Pod\nspec:\n  containers:\n  - image: app:{i}\n"
            for i in range(4)
        }
        | {"node_modules/x/Dockerfile": "FROM evil\n"},
    )
    full = scan_repository(world.github_app().session(world.inst.id, "octo-org/demo"))
    assert not full.walked
    world.fake.tree_entry_limit = 4
    walked = scan_repository(world.github_app().session(world.inst.id, "octo-org/demo"))
    assert walked.walked and refs_of(walked) == refs_of(full)
    assert not any("node_modules" in p for p, _ in refs_of(walked))
    assert world.fake.count(path=r"/git/trees/.*node_modules") == 0


def test_files_over_the_size_cap_are_skipped_from_tree_metadata(world):
    big = "FROM alpine:3.19\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    world.fake.push(world.repo, {"Dockerfile": big, "big.yaml": "a: 1\n" * (MAX_FILE_BYTES // 5 + 1)})
    world.fake.reset_log()
    result = scan_repository(world.github_app().session(world.inst.id, "octo-org/demo"))
    claimed = sorted(p for p in ("Dockerfile", "big.yaml") if wanted(p) == "claim")
    assert "Dockerfile" in claimed
    assert sorted(e.path for e in result.errors) == claimed
    assert all("larger than" in e.message for e in result.errors)
    tree = world.repo.flatten(world.repo.commit_tree(world.repo.refs["refs/heads/main"]))
    big_blobs = {tree["Dockerfile"][2], tree["big.yaml"][2]}
    fetched = {e.path.rsplit("/", 1)[-1] for e in world.fake.log if BLOBS in e.path}
    assert fetched and not fetched & big_blobs  # never downloaded


def test_cached_result_follows_the_sibling_files_it_read(world):
    """A Helm values file takes its tag from Chart.yaml: changing only Chart.yaml rescans it."""
    world.fake.push(
        world.repo,
        {
            "chart/Chart.yaml": 'apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: "1.0"\n',
            "chart/values.yaml": "image:\n  repository: example/web\n",
        },
    )
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    first = [r.reference for r in scan_repository(s).refs if r.path == "chart/values.yaml"]
    assert first == ["docker.io/example/web:1.0"]
    world.fake.push(
        world.repo, {"chart/Chart.yaml": 'apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: "2.0"\n'}
    )
    again = [r.reference for r in scan_repository(s).refs if r.path == "chart/values.yaml"]
    assert again == ["docker.io/example/web:2.0"]


def test_persistent_cache_survives_a_restart(world, tmp_path):
    scan_repository(world.github_app(data_dir=tmp_path).session(world.inst.id, "octo-org/demo"))
    world.fake.reset_log()
    restarted = world.github_app(data_dir=tmp_path)
    result = scan_repository(restarted.session(world.inst.id, "octo-org/demo"))
    assert result.fetched == 0 and result.reused == 3
    assert world.fake.count() == 1  # only the new process's token; every GET a 304
    assert (tmp_path / "github-cache.sqlite3").exists()


def test_compare_lists_changes_and_flags_truncation(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    base = world.repo.refs["refs/heads/main"]
    push = world.fake.push(
        world.repo, {"Dockerfile": "FROM alpine:3.21\n", "docker-compose.yml": None, "new/x.yaml": "a: 1\n"}
    )
    ch = s.changed_files(base, push.sha)
    assert ch.changed == ("Dockerfile", "new/x.yaml") and ch.removed == ("docker-compose.yml",)
    assert not ch.truncated
    many = world.fake.push(world.repo, {f"m/{i}.txt": str(i) for i in range(301)})
    cut = s.changed_files(base, many.sha)  # GitHub lists 300 files at most
    assert cut.truncated and len(cut.changed) + len(cut.removed) == 300
    assert s.compare("0" * 40, push.sha) is None
    assert s.changed_files("0" * 40, push.sha).truncated


def test_wrong_repository_for_the_session_is_refused(world):
    s = world.github_app().session(world.inst.id, "octo-org/demo")
    with pytest.raises(ValueError, match="octo-org/demo"):
        scan_repository(s, "octo-org/other")
