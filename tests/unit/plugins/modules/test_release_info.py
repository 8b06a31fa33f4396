"""fleet.rollout.release_info on a real release tree: what the release role decides from, in one call."""

from __future__ import annotations

import base64
import grp
import os
import pwd

from ansible_collections.fleet.rollout.plugins.modules import release_info


def release_tree(root):
    """/opt/shop as the release role leaves it: two installed releases, current on the newer one."""
    releases = root / "releases"
    for version, sha, mtime in (("1.0.0", "AAA", 1000), ("2.0.0", "bbb", 2000)):
        (releases / version).mkdir(parents=True)
        marker = releases / version / ".release-sha256"
        marker.write_text(sha + "\n")
        os.utime(marker, (mtime, mtime))
    (root / "shared" / "data").mkdir(parents=True)
    os.symlink(str(root / "shared" / "data"), str(releases / "2.0.0" / "data"))
    (releases / ".incoming-3.0.0").mkdir()
    os.symlink(str(releases / "2.0.0"), str(root / "current"))
    (root / "release-state.json").write_text('{"service": "shop", "slots": {"main": {"version": "2.0.0", "previous": "1.0.0"}}}')
    return root


def args(root, **extra):
    return dict({"current": str(root / "current"), "state_file": str(root / "release-state.json"),
                 "releases_dir": str(root / "releases")}, **extra)


def test_reads_live_link_state_and_installed_releases(run_module, tmp_path):
    root = release_tree(tmp_path)
    out = run_module(release_info.main, args(root, shared_dirs=["data"]))
    assert out["changed"] is False
    assert out["current"] == {"exists": True, "islnk": True, "lnk_target": str(root / "releases" / "2.0.0"),
                              "lnk_source": str(root / "releases" / "2.0.0")}
    assert out["state"]["slots"]["main"] == {"version": "2.0.0", "previous": "1.0.0"}
    releases = out["releases"]
    assert set(releases) == {"1.0.0", "2.0.0", ".incoming-3.0.0"}
    # The marker's sha256 lowercased as the role compares it, and when each release was installed.
    assert (releases["1.0.0"]["sha256"], releases["1.0.0"]["mtime"]) == ("aaa", 1000)
    assert (releases["2.0.0"]["sha256"], releases["2.0.0"]["mtime"]) == ("bbb", 2000)
    assert releases[".incoming-3.0.0"]["sha256"] is None
    assert releases["2.0.0"]["links"] == {"data": str(root / "shared" / "data")}
    assert releases["1.0.0"]["links"] == {"data": None}


def test_a_fresh_host_reads_as_empty(run_module, tmp_path):
    out = run_module(release_info.main, args(tmp_path / "opt" / "shop", paths=[str(tmp_path / "opt")],
                                             files=[str(tmp_path / "shop.env")]))
    assert out["current"] == {"exists": False, "islnk": False, "lnk_target": None, "lnk_source": None}
    assert out["state"] == {} and out["releases"] == {}
    assert out["paths"][str(tmp_path / "opt")]["exists"] is False
    assert out["files"] == {str(tmp_path / "shop.env"): None}
    assert out["user_exists"] is None and out["group_exists"] is None


def test_paths_files_and_accounts(run_module, tmp_path):
    root = release_tree(tmp_path)
    os.chmod(str(root / "shared" / "data"), 0o750)
    env = root / "shared" / "main.env"
    env.write_bytes(b"A=1\nB=\xff\n")
    me_user, me_group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    out = run_module(release_info.main, args(root, paths=[str(root / "shared" / "data"), str(root / "current")],
                                             files=[str(env)], user=me_user, group="no-such-group-here"))
    data = out["paths"][str(root / "shared" / "data")]
    assert data == {"exists": True, "isdir": True, "islnk": False, "lnk_target": None, "mode": "0750",
                    "owner": me_user, "group": me_group}
    link = out["paths"][str(root / "current")]
    assert link["islnk"] and not link["isdir"] and link["lnk_target"] == str(root / "releases" / "2.0.0")
    # Bytes kept exactly (slurp's encoding), so a rollback writes back what was there.
    assert base64.b64decode(out["files"][str(env)]) == b"A=1\nB=\xff\n"
    assert out["user_exists"] is True and out["group_exists"] is False


def test_current_that_is_not_a_link_and_a_dangling_link(run_module, tmp_path):
    (tmp_path / "current").mkdir()
    out = run_module(release_info.main, args(tmp_path))
    assert out["current"] == {"exists": True, "islnk": False, "lnk_target": None, "lnk_source": None}
    os.rmdir(str(tmp_path / "current"))
    os.symlink(str(tmp_path / "releases" / "gone"), str(tmp_path / "current"))
    out = run_module(release_info.main, args(tmp_path))
    assert out["current"]["exists"] and out["current"]["lnk_target"] == str(tmp_path / "releases" / "gone")


def test_a_corrupt_state_file_and_a_bad_marker_are_clear_errors(run_module, tmp_path):
    (tmp_path / "release-state.json").write_text("{not json")
    out = run_module(release_info.main, args(tmp_path))
    assert out["failed"] and "release-state.json is not JSON" in out["msg"]
    (tmp_path / "release-state.json").write_text("[1, 2]")
    out = run_module(release_info.main, args(tmp_path))
    assert out["failed"] and "holds list, expected a JSON object" in out["msg"]
    (tmp_path / "release-state.json").write_text("{}")
    out = run_module(release_info.main, args(tmp_path, marker="../x"))
    assert out["failed"] and "marker must be a file name" in out["msg"]


def test_check_mode_reads_the_same(run_module, tmp_path):
    root = release_tree(tmp_path)
    assert run_module(release_info.main, args(root), check_mode=True)["releases"]["2.0.0"]["sha256"] == "bbb"
