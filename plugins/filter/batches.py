# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batch planning for rolling updates: batch sizes as ``serial`` takes them, a cap on hosts out
of rotation, and a fleet-wide failure budget."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_COUNT = re.compile(r"^\s*([0-9]+)\s*$")
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def _size(spec, total: int, name: str, minimum: int) -> tuple[int, bool]:
    """(value, was_percent) of a count or a percentage of ``total``."""
    if isinstance(spec, bool):
        raise AnsibleFilterError("%s: expected a count or a percentage such as '25%%', got %r" % (name, spec))
    if isinstance(spec, int):
        count = spec
    elif isinstance(spec, str) and _COUNT.match(spec):
        count = int(spec)
    elif isinstance(spec, str) and _PERCENT.match(spec):
        percent = float(_PERCENT.match(spec).group(1))
        if not (minimum == 0 and percent == 0) and not 0 < percent <= 100:
            raise AnsibleFilterError("%s: %r is not a percentage above 0 and at most 100%%" % (name, spec))
        return int(total * percent / 100.0), True
    else:
        raise AnsibleFilterError("%s: expected a count or a percentage such as '25%%', got %r" % (name, spec))
    if count < minimum:
        raise AnsibleFilterError("%s: %r must be at least %d" % (name, spec, minimum))
    return count, False


def rollout_batches(hosts, batches=1, max_unavailable=None, total=None, name="batches",
                    max_unavailable_name="max_unavailable", serving=None) -> list[list[str]]:
    """Split ``hosts`` (in order) into batches.

    ``batches`` is what ``serial`` takes: a count, a percentage, or a list of them whose last entry
    repeats until every host has its batch. Percentages are of ``total`` (the whole fleet, so a rerun
    that skips finished hosts keeps its batch sizes), rounded down but at least 1. ``max_unavailable``
    (a count or percentage) caps every batch, since a batch is out of rotation while it is updated.
    ``serving`` are the hosts users reach (the active pool's): a batch never takes all of them out at
    once when there are two or more; the last of them then waits for the next batch.
    """
    hosts = list(hosts)
    total = len(hosts) if total is None else int(total)
    specs = batches if isinstance(batches, list) else [batches]
    if not specs:
        raise AnsibleFilterError("%s: expected a count, a percentage or a non-empty list of them" % name)
    sizes = []
    for index, spec in enumerate(specs):
        where = name if not isinstance(batches, list) else "%s[%d]" % (name, index)
        size, _percent = _size(spec, total, where, 1)
        sizes.append(max(size, 1))
    cap = None
    if max_unavailable is not None and max_unavailable != "":
        cap, _percent = _size(max_unavailable, total, max_unavailable_name, 1)
        cap = max(cap, 1)
    serving = set(serving or [])
    plan: list[list[str]] = []
    queue = hosts
    while queue:
        size = sizes[min(len(plan), len(sizes) - 1)]
        if cap is not None:
            size = min(size, cap)
        batch = queue[:size]
        if len(serving) > 1 and serving <= set(batch):
            batch.remove([host for host in batch if host in serving][-1])
        plan.append(batch)
        queue = [host for host in queue if host not in batch]
    return plan


def rollout_budget(spec, total, name="failure_budget") -> int:
    """How many hosts of ``total`` may fail: a count, or a percentage rounded down (``0`` fails on any)."""
    count, _percent = _size(spec, int(total), name, 0)
    return count


class FilterModule:
    def filters(self):
        return {"rollout_batches": rollout_batches, "rollout_budget": rollout_budget}
