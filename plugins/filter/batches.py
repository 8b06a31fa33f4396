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
                    max_unavailable_name="max_unavailable", serving=None, down=None, held=None) -> list[list[str]]:
    """Split ``hosts`` (in order) into batches.

    ``batches`` is what ``serial`` takes: a count, a percentage, or a list of them whose last entry
    repeats until every host has its batch. Percentages are of ``total`` (the whole fleet, so a rerun
    that skips finished hosts keeps its batch sizes), rounded down but at least 1. ``max_unavailable``
    (a count or percentage) caps the hosts out of rotation at once.

    Capacity already missing counts: ``down`` are hosts the LBs see DOWN now (those in ``hosts`` are
    updated first, in batches of their own size: taking them out costs nothing), ``held`` are hosts out
    of rotation that stay out (an operator's maintenance). Both count against ``max_unavailable``, and a
    batch of healthy hosts that would go over it is made smaller; when no healthy host can leave
    without going over it, the plan is refused.

    ``serving`` are the hosts users reach (the active pool's): a batch never takes every one of them
    still in rotation out at once when the pool has two or more; the last of them then waits for the next
    batch (by when the down hosts updated before it are back), and a plan whose only host left in
    rotation would have to leave is refused.
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
    down = set(down or [])
    # Down hosts this plan does not update stay out of rotation like held ones.
    held = set(held or []) | (down - set(hosts))
    waiting_down = [host for host in hosts if host in down]
    serving = set(serving or [])
    plan: list[list[str]] = []
    queue = waiting_down + [host for host in hosts if host not in down]
    while queue:
        size = sizes[min(len(plan), len(sizes) - 1)]
        repairs = [host for host in queue[:size] if host in down]
        healthy_room = size - len(repairs)
        if cap is not None:
            # Out during the batch: the held hosts, every down host not updated yet, and its healthy hosts.
            healthy_room = min(healthy_room, max(0, cap - len(held) - len(waiting_down)))
            if not repairs and healthy_room == 0:
                raise AnsibleFilterError(
                    "%s: %s out of rotation already (%s), and %s is %d: no host can be taken out without going"
                    " over it; bring them back or raise %s"
                    % (max_unavailable_name, _count(len(held) + len(waiting_down)),
                       ", ".join(sorted(held | set(waiting_down))), max_unavailable_name, cap, max_unavailable_name))
        batch = repairs + [host for host in queue[len(repairs):] if host not in down][:healthy_room]
        in_rotation = serving - held - set(waiting_down)
        if len(serving) > 1 and in_rotation and in_rotation <= set(batch):
            batch.remove([host for host in batch if host in in_rotation][-1])
            if not batch:
                raise AnsibleFilterError(
                    "%s: %s is the only host of the active pool in rotation (%s out: %s); taking it out would"
                    " leave users nothing to reach: bring the others back first"
                    % (name, next(iter(in_rotation)), _count(len(serving & (held | down))),
                       ", ".join(sorted(serving & (held | down)))))
        plan.append(batch)
        waiting_down = [host for host in waiting_down if host not in batch]
        queue = [host for host in queue if host not in batch]
    return plan


def _count(number: int) -> str:
    return "%d host%s %s" % (number, "" if number == 1 else "s", "is" if number == 1 else "are")


def rollout_budget(spec, total, name="failure_budget") -> int:
    """How many hosts of ``total`` may fail: a count, or a percentage rounded down (``0`` fails on any)."""
    count, _percent = _size(spec, int(total), name, 0)
    return count


class FilterModule:
    def filters(self):
        return {"rollout_batches": rollout_batches, "rollout_budget": rollout_budget}
