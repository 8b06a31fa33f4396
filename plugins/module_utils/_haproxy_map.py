# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace the content of an HAProxy map atomically, at runtime and on disk.

The logic behind ``fleet.rollout.haproxy_map``. At runtime the new content
goes into a new map version (``prepare map``), is filled in one payload
(``add map @ver``) and becomes visible at once (``commit map @ver``): a
request is routed by the old map or by the new one, never by a half-written
one. The map file gets the same content by an atomic rename, so a reload
keeps it (CLI map edits are not written back to the file by HAProxy).
"""

from __future__ import annotations

import re
import time

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import read_text, write_atomic
from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyCommandError, HAProxyRuntimeError

_VERSION = re.compile(r"New version created:\s*(\d+)")
_UNSAFE = re.compile(r"[\s#]")

HEADER = "# Managed by fleet.rollout.haproxy_map: edits here are overwritten.\n"


class MapEntryError(ValueError):
    pass


class MapNotAppliedError(HAProxyRuntimeError):
    """The running map does not hold the entries just committed."""


def normalize_entries(entries) -> list[tuple[str, str]]:
    """A dict, or a list of ``{key, value}``, → ordered ``(key, value)`` pairs.

    Order matters: for ranges and patterns the first match wins.
    """
    if isinstance(entries, dict):
        pairs = list(entries.items())
    else:
        pairs = []
        for index, item in enumerate(entries or []):
            if not isinstance(item, dict) or set(item) - {"key", "value"} or "key" not in item:
                raise MapEntryError("entries[%d]: expected {key: ..., value: ...}, got %r" % (index, item))
            pairs.append((item["key"], item.get("value", "")))
    result = []
    seen = set()
    for key, value in pairs:
        key = str(key)
        value = "" if value is None else str(value)
        if not key or _UNSAFE.search(key):
            raise MapEntryError("map key %r: must be non-empty, without spaces or '#'" % key)
        if "\n" in value or "\r" in value or value != value.strip():
            raise MapEntryError("map value %r for key %r: must be one line without leading or trailing spaces" % (value, key))
        if key in seen:
            raise MapEntryError("map key %r appears twice" % key)
        seen.add(key)
        result.append((key, value))
    return result


def render(entries: list[tuple[str, str]]) -> str:
    return HEADER + "".join("%s %s\n" % (key, value) if value else "%s\n" % key for key, value in entries)


def _one_line(entries: list[tuple[str, str]]) -> str:
    return "; ".join(("%s %s" % (key, value)) if value else key for key, value in entries)


def parse_file(text: str | None) -> list[tuple[str, str]]:
    """Entries of a map file, as HAProxy reads it (comments and blank lines skipped)."""
    entries = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        entries.append((parts[0], parts[1] if len(parts) == 2 else ""))
    return entries


def replace_runtime(client, map_ref: str, entries: list[tuple[str, str]]) -> float:
    """Swap the running map for ``entries`` in one commit; returns when the commit was sent (epoch seconds)."""
    output = client.execute("prepare map " + map_ref)
    match = _VERSION.search(output)
    if not match:
        raise HAProxyCommandError("prepare map " + map_ref, output)
    version = match.group(1)
    if entries:
        client.run_set("add map @%s %s" % (version, map_ref),
                       payload=["%s %s" % (key, value) if value else key for key, value in entries])
    # The commit is the switch: a request parsed after it sees the new entries.
    committed = time.time()
    client.run_set("commit map @%s %s" % (version, map_ref))
    return committed


def converge(client, map_path: str, entries, runtime: bool = True, write_file: bool = True,
             check_mode: bool = False) -> dict:
    """Make the running map and the map file hold exactly ``entries``."""
    wanted = normalize_entries(entries)
    content = render(wanted)
    on_disk = read_text(map_path)
    file_changed = write_file and on_disk != content
    live = client.show_map(map_path) if runtime else None
    runtime_changed = runtime and live != wanted
    applied_at = None
    if not check_mode:
        if runtime_changed:
            applied_at = replace_runtime(client, map_path, wanted)
            # Read back what requests are routed by now: a strategy moves on (watches a flip, stops the old
            # pool) on this step's word alone, without a second look at every LB.
            running = client.show_map(map_path)
            if running != wanted:
                raise MapNotAppliedError("the running map %s does not hold the entries after the commit: %s, expected %s"
                                         % (map_path, _one_line(running), _one_line(wanted)))
        if file_changed:
            write_atomic(map_path, content, mode=0o644)
    return {
        "changed": bool(file_changed or runtime_changed),
        "runtime_changed": bool(runtime_changed),
        "file_changed": bool(file_changed),
        "entries": [{"key": key, "value": value} for key, value in wanted],
        "previous_entries": [{"key": key, "value": value} for key, value in (live if live is not None else parse_file(on_disk))],
        "applied_at": applied_at,
        "diff": _diff(map_path, on_disk, content, live, wanted, file_changed, runtime_changed),
    }


def _diff(map_path, on_disk, content, live, wanted, file_changed, runtime_changed) -> dict:
    """The file's change when it changes; else the running map's when only that drifted."""
    if runtime_changed and not file_changed:
        return {"before": render(live or []), "after": render(wanted),
                "before_header": "%s (running)" % map_path, "after_header": "%s (running)" % map_path}
    before = on_disk if on_disk is not None else ""
    return {"before": before, "after": content if file_changed else before,
            "before_header": map_path, "after_header": map_path}
