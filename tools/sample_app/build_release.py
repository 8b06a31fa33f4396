"""Build sample-app release tarballs with their sha256.

    build_release.py --out DIR [VERSION ...]

Each VERSION gives DIR/sample-app-VERSION.tar.gz (sample_app.py and
release.json at the top level), DIR/sample-app-VERSION.tar.gz.sha256 and a
line in DIR/SHA256SUMS. Builds are reproducible: the same sources give the
same bytes, so checksums are stable across machines.

Known versions and what makes them differ (release.json "defaults", which
the SAMPLE_APP_* environment can still override):
  1.0.0, 2.0.0  healthy releases
  2.0.1-bad     passes its health check but fails 30 % of requests and adds
                250 ms: only traffic analysis can catch it
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VERSIONS = ("1.0.0", "2.0.0", "2.0.1-bad")
SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BAD_DEFAULTS = {"error_rate": 0.3, "latency_ms": 250}


def release_metadata(version: str) -> dict:
    defaults = dict(BAD_DEFAULTS) if version.endswith("-bad") else {}
    return {"name": "sample-app", "version": version, "defaults": defaults}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def build_tarball(version: str) -> bytes:
    if not SAFE_VERSION.match(version) or ".." in version:
        raise ValueError("version %r: use letters, digits, '.', '_' and '-' only" % version)
    with open(os.path.join(HERE, "sample_app.py"), "rb") as handle:
        app = handle.read()
    meta = (json.dumps(release_metadata(version), indent=2, sort_keys=True) + "\n").encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "release.json", meta, 0o644)
        _add_bytes(tar, "sample_app.py", app, 0o755)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_release(version: str, out_dir: str) -> tuple[str, str]:
    data = build_tarball(version)
    digest = hashlib.sha256(data).hexdigest()
    name = "sample-app-%s.tar.gz" % version
    path = os.path.join(out_dir, name)
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write("%s  %s\n" % (digest, name))
    return name, digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("versions", nargs="*", default=list(DEFAULT_VERSIONS))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    sums = []
    for version in args.versions:
        name, digest = write_release(version, args.out)
        sums.append("%s  %s\n" % (digest, name))
        print("%s  %s" % (digest, name))
    with open(os.path.join(args.out, "SHA256SUMS"), "w", encoding="utf-8") as handle:
        handle.writelines(sums)
    return 0


if __name__ == "__main__":
    sys.exit(main())
