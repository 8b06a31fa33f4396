"""Release tarballs: reproducible, checksummed, version baked in."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest


def test_builds_are_reproducible_and_checksummed(build_release, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_release.main(["--out", str(a), "1.0.0", "2.0.1-bad"])
    build_release.main(["--out", str(b), "1.0.0", "2.0.1-bad"])
    for version in ("1.0.0", "2.0.1-bad"):
        name = "sample-app-%s.tar.gz" % version
        data = (a / name).read_bytes()
        assert data == (b / name).read_bytes()
        digest, listed = (a / (name + ".sha256")).read_text().split()
        assert digest == hashlib.sha256(data).hexdigest() and listed == name
    assert len((a / "SHA256SUMS").read_text().splitlines()) == 2


def test_release_metadata_carries_version_and_bad_defaults(build_release, tmp_path):
    build_release.main(["--out", str(tmp_path), "2.0.0", "2.0.1-bad"])
    for version, bad in (("2.0.0", False), ("2.0.1-bad", True)):
        with tarfile.open(tmp_path / ("sample-app-%s.tar.gz" % version)) as tar:
            assert sorted(tar.getnames()) == ["release.json", "sample_app.py"]
            meta = json.load(tar.extractfile("release.json"))
        assert meta["version"] == version
        assert (meta["defaults"].get("error_rate", 0) > 0) is bad


@pytest.mark.parametrize("version", ["../x", "/abs", "", "a b", ".."])
def test_unsafe_versions_are_rejected(build_release, version):
    with pytest.raises(ValueError, match="version"):
        build_release.build_tarball(version)
