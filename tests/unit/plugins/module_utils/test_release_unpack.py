"""release_unpack's engine with the real GNU tar on real tarballs."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils._release_unpack import UnpackError, incoming_dir, unpack


def run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def make_tarball(path, members: dict, prefix: str = "") -> str:
    """``members``: name -> bytes (a file) or None (a directory). Returns the tarball's sha256."""
    with tarfile.open(str(path), "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.uid = info.gid = 4242
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path):
    releases = tmp_path / "releases"
    shared = tmp_path / "shared" / "data"
    releases.mkdir()
    shared.mkdir(parents=True)
    artifact = tmp_path / "2.0.0-app.tar.gz"
    sha = make_tarball(artifact, {"app.py": b"print('2.0.0')\n", "data": None, "data/seed.json": b"{}\n",
                                  "static": None, "static/index.html": b"<p>2.0.0</p>\n"})
    return {"releases": releases, "shared": shared, "artifact": artifact, "sha": sha,
            "dest": str(releases / "2.0.0")}


def test_installs_whole_links_shared_marks_and_removes_the_artifact(tree):
    out = unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run, shared_links={"data": str(tree["shared"])})
    dest = tree["dest"]
    assert out["changed"] and out["installed"] and out["artifact_removed"] and out["files"] == 5
    with open(os.path.join(dest, "app.py"), encoding="utf-8") as handle:
        assert handle.read() == "print('2.0.0')\n"
    # The tarball's own data directory gave way to the link to the shared one.
    assert os.readlink(os.path.join(dest, "data")) == str(tree["shared"])
    with open(os.path.join(dest, ".release-sha256"), encoding="utf-8") as handle:
        assert handle.read() == tree["sha"] + "\n"
    assert oct(os.stat(os.path.join(dest, ".release-sha256")).st_mode & 0o777) == "0o644"
    assert os.stat(os.path.join(dest, "app.py")).st_uid == os.geteuid()  # not the tarball's 4242
    assert not os.path.exists(str(tree["artifact"])) and not os.path.exists(incoming_dir(dest))
    assert sorted(os.listdir(str(tree["releases"]))) == ["2.0.0"]


def test_an_installed_release_is_never_overwritten(tree):
    os.mkdir(tree["dest"])
    out = unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run)
    assert out["changed"] and not out["installed"] and out["artifact_removed"]
    assert os.listdir(tree["dest"]) == [] and not os.path.exists(str(tree["artifact"]))
    again = unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run)
    assert not again["changed"] and not again["artifact_removed"]


def test_strip_components_and_an_interrupted_install_left_behind(tree, tmp_path):
    artifact = tmp_path / "nested.tar.gz"
    sha = make_tarball(artifact, {"app-2.0.0": None, "app-2.0.0/app.py": b"x\n"}, prefix="")
    leftover = incoming_dir(tree["dest"])
    os.mkdir(leftover)
    with open(os.path.join(leftover, "half-written.py"), "w", encoding="utf-8") as handle:
        handle.write("partial")
    out = unpack(tree["dest"], str(artifact), sha, run, strip_components=1, remove_artifact=False)
    assert out["installed"] and not out["artifact_removed"] and artifact.exists()
    assert sorted(os.listdir(tree["dest"])) == [".release-sha256", "app.py"]


def test_a_corrupt_tarball_leaves_nothing_but_the_artifact(tree):
    tree["artifact"].write_bytes(b"not a tarball at all")
    sha = hashlib.sha256(b"not a tarball at all").hexdigest()
    with pytest.raises(UnpackError, match=r"unpacking .*2\.0\.0-app\.tar\.gz failed \(tar exit 2\)"):
        unpack(tree["dest"], str(tree["artifact"]), sha, run)
    assert os.listdir(str(tree["releases"])) == [] and tree["artifact"].exists()


def test_an_artifact_with_another_sha256_is_deleted_and_nothing_else_changes(tree):
    expected = "0" * 64
    with pytest.raises(UnpackError) as raised:
        unpack(tree["dest"], str(tree["artifact"]), expected, run, shared_links={"data": str(tree["shared"])})
    assert str(raised.value) == ("%s: sha256 is %s, expected %s; the artifact was deleted and nothing else changed"
                                 % (tree["artifact"], tree["sha"], expected))
    assert not tree["artifact"].exists() and os.listdir(str(tree["releases"])) == []


def test_a_missing_artifact_is_named(tree):
    tree["artifact"].unlink()
    with pytest.raises(UnpackError, match="artifact .*2.0.0-app.tar.gz does not exist on this host"):
        unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run)
    assert os.listdir(str(tree["releases"])) == []


def test_check_mode_reports_and_changes_nothing(tree):
    out = unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run, check_mode=True)
    assert out["changed"] and out["installed"] and out["files"] == 0
    assert os.listdir(str(tree["releases"])) == [] and tree["artifact"].exists()
    # In check mode the upload did not happen either: a missing artifact is not an error.
    tree["artifact"].unlink()
    assert unpack(tree["dest"], str(tree["artifact"]), tree["sha"], run, check_mode=True)["installed"]


def test_members_climbing_out_stay_in(tree, tmp_path):
    artifact = tmp_path / "evil.tar.gz"
    sha = make_tarball(artifact, {"../escaped.txt": b"out\n", "ok.txt": b"in\n"})
    try:
        unpack(tree["dest"], str(artifact), sha, run)
    except UnpackError as error:
        assert "failed" in str(error)
    assert not (tree["releases"] / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"dest": "relative/2.0.0"}, "dest must be an absolute path"),
    ({"sha256": "ABC"}, "sha256 must be 64 lowercase hex digits"),
    ({"strip_components": -1}, "strip_components must be >= 0, got -1"),
    ({"shared_links": {"../data": "/srv/data"}}, "shared_links: '../data' is not a directory name"),
    ({"shared_links": {"data": "shared/data"}}, "shared_links[data] must be an absolute path"),
    ({"marker": "a/b"}, "marker must be a file name"),
])
def test_bad_arguments_are_named_before_anything_changes(tree, kwargs, message):
    args = dict(dest=tree["dest"], artifact=str(tree["artifact"]), sha256=tree["sha"], run=run)
    args.update(kwargs)
    with pytest.raises(ValueError) as raised:
        unpack(**args)
    assert message in str(raised.value)
    assert os.listdir(str(tree["releases"])) == [] and tree["artifact"].exists()
