# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unpack a release tarball beside the installed releases and move it into place whole.

Everything happens in ``<releases>/.incoming-<version>``, which is renamed to ``<releases>/<version>`` only
once the release is complete (unpacked, shared directories linked, sha256 marker written): a release
directory either is complete or does not exist, and an interrupted install leaves only the ``.incoming-``
directory, which the next install removes first. One call does what the role did in eight tasks.

GNU tar does the unpacking, as ``ansible.builtin.unarchive`` does for tarballs: it refuses member names
with ``..``, strips leading ``/`` and never writes through a symlink it unpacked earlier.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil

SAFE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class UnpackError(Exception):
    """The release could not be installed; the message says which step and why."""


def incoming_dir(dest: str) -> str:
    """Where ``dest`` is assembled before it is moved into place."""
    return os.path.join(os.path.dirname(dest), ".incoming-" + os.path.basename(dest))


def check(dest: str, sha256: str, shared_links: dict, strip_components: int, marker: str) -> None:
    """ValueError naming the argument that cannot work, before anything on disk changes."""
    if not os.path.isabs(dest) or os.path.basename(dest) in ("", ".", ".."):
        raise ValueError("dest must be an absolute path to a release directory, got %r" % dest)
    if not re.match(r"\A[0-9a-f]{64}\Z", sha256 or ""):
        raise ValueError("sha256 must be 64 lowercase hex digits, got %r" % sha256)
    if "/" in marker or marker in ("", ".", ".."):
        raise ValueError("marker must be a file name, got %r" % marker)
    if strip_components < 0:
        raise ValueError("strip_components must be >= 0, got %d" % strip_components)
    for name, target in (shared_links or {}).items():
        if not SAFE_NAME.match(name):
            raise ValueError("shared_links: %r is not a directory name (letters, digits, '.', '_', '-')" % name)
        if not os.path.isabs(target):
            raise ValueError("shared_links[%s] must be an absolute path, got %r" % (name, target))


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def file_sha256(path: str) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB blocks (an artifact may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_files(root: str) -> int:
    return sum(len(dirs) + len(files) for _path, dirs, files in os.walk(root))


def unpack(dest: str, artifact: str, sha256: str, run, tar: str = "tar", marker: str = ".release-sha256",
           shared_links: dict | None = None, strip_components: int = 0, remove_artifact: bool = True,
           check_mode: bool = False) -> dict:
    """Install ``artifact`` as ``dest`` unless it is there; remove the artifact afterwards when asked.

    ``run(argv)`` runs a command and returns ``(rc, stdout, stderr)``. Returns ``changed``, ``installed``
    (whether this call unpacked it), ``artifact_removed``, ``path``, ``files`` (entries unpacked, links
    included) and ``links``. UnpackError when the artifact's sha256 is not ``sha256`` (the artifact is
    deleted then, nothing else changes), when tar fails or when the release cannot be moved into place (the
    ``.incoming-`` directory is removed then, the artifact kept).
    """
    shared_links = dict(shared_links or {})
    check(dest, sha256, shared_links, strip_components, marker)
    result = {"changed": False, "installed": False, "artifact_removed": False, "path": dest, "files": 0,
              "links": shared_links}
    artifact_there = os.path.exists(artifact)
    if os.path.exists(dest):
        if remove_artifact and artifact_there:
            result.update(changed=True, artifact_removed=True)
            if not check_mode:
                os.unlink(artifact)
        return result
    result.update(changed=True, installed=True, artifact_removed=remove_artifact)
    if check_mode:  # the artifact is not uploaded in check mode either
        return result
    if not os.path.isfile(artifact):
        raise UnpackError("artifact %s does not exist on this host" % artifact)
    # Verified here rather than by tasks before: the same read, three round trips fewer, and no window
    # between the check and the unpacking.
    found = file_sha256(artifact)
    if found != sha256:
        os.unlink(artifact)
        raise UnpackError("%s: sha256 is %s, expected %s; the artifact was deleted and nothing else changed"
                          % (artifact, found, sha256))
    incoming = incoming_dir(dest)
    _remove(incoming)  # what an interrupted install left behind
    os.mkdir(incoming, 0o755)
    os.chmod(incoming, 0o755)
    try:
        argv = [tar, "--extract", "--file", artifact, "--directory", incoming, "--no-same-owner"]
        if strip_components:
            argv.append("--strip-components=%d" % strip_components)
        rc, _out, err = run(argv)
        if rc != 0:
            raise UnpackError("unpacking %s failed (tar exit %d): %s" % (artifact, rc, (err or "").strip()[-2000:]))
        for name, target in sorted(shared_links.items()):
            link = os.path.join(incoming, name)
            _remove(link)
            os.symlink(target, link)
        marker_path = os.path.join(incoming, marker)
        with open(marker_path, "w", encoding="utf-8") as handle:
            handle.write(sha256 + "\n")
        os.chmod(marker_path, 0o644)
        result["files"] = _count_files(incoming)
        if os.path.lexists(dest):
            raise UnpackError("%s appeared while the release was unpacked; left it as it is" % dest)
        os.rename(incoming, dest)
    except (OSError, UnpackError) as error:
        shutil.rmtree(incoming, ignore_errors=True)
        if isinstance(error, UnpackError):
            raise
        raise UnpackError("installing %s as %s failed: %s" % (artifact, dest, error)) from error
    if remove_artifact and artifact_there:
        os.unlink(artifact)
    return result
