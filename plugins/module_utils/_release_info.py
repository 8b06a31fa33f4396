# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything fleet.rollout.release needs to know about a host before it changes it, read in one pass.

The release role used to learn this with a dozen stat, slurp and getent tasks per host; each is a round
trip to the host (a third of a second or more), and a ramped rollout pays them once per batch. One module
call reads the same facts, so what the role decides is unchanged.
"""

from __future__ import annotations

import base64
import grp
import json
import os
import pwd
import stat


class ReleaseInfoError(Exception):
    """A file that is there but cannot be used (an unreadable or corrupt state file)."""


def link_info(path: str) -> dict:
    """Whether ``path`` exists (a dangling link counts), is a link, where it points, and what it resolves to."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False, "islnk": False, "lnk_target": None, "lnk_source": None}
    if not stat.S_ISLNK(st.st_mode):
        return {"exists": True, "islnk": False, "lnk_target": None, "lnk_source": None}
    return {"exists": True, "islnk": True, "lnk_target": os.readlink(path), "lnk_source": os.path.realpath(path)}


def _owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _group(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def path_info(path: str) -> dict:
    """What the role's file tasks would compare: kind, mode (octal string), owner and group names."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False, "isdir": False, "islnk": False, "lnk_target": None, "mode": None,
                "owner": None, "group": None}
    islnk = stat.S_ISLNK(st.st_mode)
    return {
        "exists": True,
        "isdir": stat.S_ISDIR(st.st_mode),
        "islnk": islnk,
        "lnk_target": os.readlink(path) if islnk else None,
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "owner": _owner(st.st_uid),
        "group": _group(st.st_gid),
    }


def read_state(path: str) -> dict:
    """The release state file as a dict; {} when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise ReleaseInfoError("%s is not JSON (%s): fix or remove it; it records the live and previous release "
                               "of every slot" % (path, exc)) from exc
    if not isinstance(state, dict):
        raise ReleaseInfoError("%s holds %s, expected a JSON object" % (path, type(state).__name__))
    return state


def read_releases(releases_dir: str, marker: str, shared: list[str]) -> dict:
    """Each entry of ``releases_dir``: the sha256 its marker records (None without one), the marker's mtime
    (when the release was installed) and where each shared directory link in it points."""
    try:
        names = sorted(os.listdir(releases_dir))
    except FileNotFoundError:
        return {}
    releases = {}
    for name in names:
        path = os.path.join(releases_dir, name)
        marker_path = os.path.join(path, marker)
        sha256, mtime = None, None
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                with open(marker_path, encoding="utf-8") as handle:
                    sha256 = handle.read().strip().lower()
                mtime = os.stat(marker_path).st_mtime
            except FileNotFoundError:
                pass
        releases[name] = {
            "sha256": sha256,
            "mtime": mtime,
            "links": {item: link_info(os.path.join(path, item))["lnk_target"] for item in shared},
        }
    return releases


def read_file_b64(path: str) -> str | None:
    """A file's bytes, base64-encoded as slurp returns them; None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return base64.b64encode(handle.read()).decode("ascii")
    except FileNotFoundError:
        return None


def _exists(lookup, name: str | None) -> bool | None:
    """Whether ``lookup(name)`` finds the account; None without a name."""
    if not name:
        return None
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def account_exists(user: str | None, group: str | None) -> dict:
    return {"user_exists": _exists(pwd.getpwnam, user), "group_exists": _exists(grp.getgrnam, group)}


def release_info(current: str, state_file: str, releases_dir: str, marker: str, shared_dirs: list[str] | None = None,
                 paths: list[str] | None = None, files: list[str] | None = None, user: str | None = None,
                 group: str | None = None) -> dict:
    """The module's whole result (without ``changed``)."""
    result = {
        "current": link_info(current),
        "state": read_state(state_file),
        "releases": read_releases(releases_dir, marker, list(shared_dirs or [])),
        "paths": {path: path_info(path) for path in paths or []},
        "files": {path: read_file_b64(path) for path in files or []},
    }
    result.update(account_exists(user, group))
    return result
