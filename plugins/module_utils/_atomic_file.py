# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a file so that readers see the old or the new content, never a mix."""

from __future__ import annotations

import os
import tempfile


def read_text(path: str) -> str | None:
    """Content of ``path``, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path: str, content: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` by a rename in the same directory.

    Keeps the mode and ownership of an existing file (a map file that HAProxy
    reads as its own user must stay readable); ``mode`` applies to a new one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if current is not None:
            os.chmod(tmp, current.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(tmp, current.st_uid, current.st_gid)
        else:
            os.chmod(tmp, 0o644 if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
