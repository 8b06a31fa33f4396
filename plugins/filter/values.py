# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each item's value at a key, None where it has none.

Jinja's ``map(attribute=..., default=none)`` cannot say this: a default of None counts as no default, so
the first result without the key (a skipped, failed or unreachable one) fails the whole expression."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _value(item, path: list[str]):
    for key in path:
        if isinstance(item, Mapping) and key in item:
            item = item[key]
        else:
            return None
    return item


def values_at(items, key: str) -> list:
    """``[item[key] or None for item in items]``; ``key`` may be dotted (``release_live.version``)."""
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise AnsibleFilterError("values_at: expected a key such as 'state' or 'release_live.version', got %r" % (key,))
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):
        raise AnsibleFilterError("values_at: expected a list (a loop's results, hostvars entries), got %s"
                                 % type(items).__name__)
    path = key.split(".")
    return [_value(item, path) for item in items]


class FilterModule:
    def filters(self):
        return {"values_at": values_at}
