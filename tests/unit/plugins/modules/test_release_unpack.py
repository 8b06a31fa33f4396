"""fleet.rollout.release_unpack as Ansible runs it, with the real GNU tar."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

from ansible_collections.fleet.rollout.plugins.modules import release_unpack


def tarball(path) -> str:
    with tarfile.open(str(path), "w:gz") as tar:
        content = b"2.0.0\n"
        info = tarfile.TarInfo("VERSION")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_then_rerun_unchanged_with_diff(run_module, tmp_path):
    artifact = tmp_path / "app.tar.gz"
    sha = tarball(artifact)
    (tmp_path / "shared").mkdir()
    args = {"dest": str(tmp_path / "releases" / "2.0.0"), "artifact": str(artifact), "sha256": sha,
            "shared_links": {"data": str(tmp_path / "shared")}}
    (tmp_path / "releases").mkdir()
    planned = run_module(release_unpack.main, args, check_mode=True, diff=True)
    assert planned["changed"] and planned["diff"]["before"]["state"] == "absent"
    assert not os.path.exists(args["dest"])
    out = run_module(release_unpack.main, args, diff=True)
    assert out["changed"] and out["installed"] and out["diff"]["after"] == {
        "path": args["dest"], "state": "installed", "sha256": sha}
    assert (tmp_path / "releases" / "2.0.0" / "VERSION").read_text() == "2.0.0\n"
    assert os.readlink(str(tmp_path / "releases" / "2.0.0" / "data")) == str(tmp_path / "shared")
    again = run_module(release_unpack.main, args, diff=True)
    assert not again["changed"] and "diff" not in again


def test_bad_input_fails_naming_it(run_module, tmp_path):
    out = run_module(release_unpack.main, {"dest": str(tmp_path / "2.0.0"), "artifact": str(tmp_path / "a.tar.gz"),
                                           "sha256": "x" * 64})
    assert out["failed"] and "sha256 must be 64 lowercase hex digits" in out["msg"]
