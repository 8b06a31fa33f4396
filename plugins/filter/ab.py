# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An A/B test's input checked, its split in order, and the split as HAProxy hash ranges."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ansible.errors import AnsibleFilterError

BUCKETS = 10000
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
GOAL_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&()*+,=:@/-]*\Z")
RESERVED = ("active", "preview", "maintenance", "canary", "stable")


def _percent(value) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        percent = Decimal(str(value))
    except InvalidOperation:
        return None
    # 0 is refused: a variant without users has no place in the split (nginx's split_clients cannot hold it).
    if not percent.is_finite() or percent <= 0 or percent > 100 or percent != percent.quantize(Decimal("0.01")):
        return None
    return percent


def ab_problems(split, service: dict, groups, play_hosts, versions=None, control="", goal=None, name="") -> list[str]:
    """Every way an A/B test's input is wrong, each naming its variable; empty when it can run."""
    problems = []
    pools = {pool["name"]: pool for pool in service.get("pools", [])}
    if not isinstance(split, dict) or len(split) < 2:
        return ["ab_test_split: expected two variants or more, pools of service %s with their percent of the users, "
                "such as {a: 50, b: 50}; got %r" % (service.get("name"), split)]
    total = Decimal(0)
    for variant, value in split.items():
        if variant not in pools:
            problems.append("ab_test_split: %r is not a pool of service %s (its pools: %s)"
                            % (variant, service.get("name"), ", ".join(pools)))
        elif variant in RESERVED:
            problems.append("ab_test_split: a variant cannot be called %r" % variant)
        percent = _percent(value)
        if percent is None:
            problems.append("ab_test_split.%s: expected a percent above 0, at most 100, in steps of 0.01, got %r" % (variant, value))
        else:
            total += percent
    if not problems and total != 100:
        problems.append("ab_test_split: the percentages add up to %s, not 100" % format(total.normalize(), "f"))
    hosts: dict[str, str] = {}
    for variant in split:
        for host in groups.get(pools.get(variant, {}).get("group"), []) if variant in pools else []:
            if host in hosts:
                problems.append("ab_test_split: host %s is in both %s and %s; each variant needs its own hosts"
                                % (host, hosts[host], variant))
            hosts[host] = variant
            if host not in play_hosts:
                problems.append("ab_test_split: host %s of variant %s is not in the play" % (host, variant))
        if variant in pools and pools[variant].get("slot"):
            problems.append("ab_test_split: pool %s runs in a release slot; an A/B test needs the pools layout" % variant)
    if not isinstance(versions, dict):
        problems.append("ab_test_versions: expected {variant: release}, got %r" % (versions,))
    else:
        for variant, version in versions.items():
            if variant not in split:
                problems.append("ab_test_versions: %r is not a variant of the split (%s)" % (variant, ", ".join(split)))
            if not isinstance(version, str) or not SAFE_NAME.match(version) or len(version) > 128:
                problems.append("ab_test_versions.%s: expected a release name such as 2.0.0, got %r" % (variant, version))
    if control and control not in split:
        problems.append("ab_test_control: %r is not a variant of the split (%s)" % (control, ", ".join(split)))
    if not isinstance(goal, dict) or not isinstance(goal.get("path"), str) or not GOAL_PATH.match(goal["path"]) \
            or not re.match(r"^[A-Z]+\Z", str(goal.get("method", "GET"))):
        problems.append("ab_test_goal: expected {method: GET, path: /checkout}, got %r" % (goal,))
    if name and (not isinstance(name, str) or not SAFE_NAME.match(name) or len(name) > 64):
        problems.append("ab_test_name: expected letters, digits, '.', '_' and '-' (at most 64), got %r" % (name,))
    return problems


def ab_split(split: dict, service: dict) -> list[dict]:
    """The split as ``[{variant, percent}]`` in the service's pool order (which fixes the hash ranges)."""
    return [{"variant": pool["name"], "percent": float(split[pool["name"]])}
            for pool in service["pools"] if pool["name"] in split]


def ab_ranges(split) -> dict:
    """``{"first:last": variant}`` over the buckets 0-9999 of the user id's hash, one contiguous range per
    variant in the split's order, so that changing the percentages moves only the users between the old and
    the new boundaries. ``split`` is a list of ``{variant, percent}`` adding up to 100 (0.01 steps)."""
    if not isinstance(split, list) or not split:
        raise AnsibleFilterError("ab_ranges: expected a list of {variant, percent}, got %r" % (split,))
    ranges = {}
    start, total = 0, Decimal(0)
    for index, entry in enumerate(split):
        try:
            percent = Decimal(str(entry["percent"]))
        except (KeyError, TypeError, InvalidOperation):
            raise AnsibleFilterError("ab_ranges: split[%d] needs a percent, got %r" % (index, entry)) from None
        if percent < 0 or percent != percent.quantize(Decimal("0.01")):
            raise AnsibleFilterError("ab_ranges: split[%d].percent must be 0-100 in steps of 0.01, got %s"
                                     % (index, entry["percent"]))
        total += percent
        end = int(total * BUCKETS / 100)
        if end > start:
            ranges["%d:%d" % (start, end - 1)] = entry["variant"]
        start = end
    if total != 100:
        raise AnsibleFilterError("ab_ranges: the percentages add up to %s, not 100" % total)
    return ranges


class FilterModule:
    def filters(self):
        return {"ab_ranges": ab_ranges, "ab_problems": ab_problems, "ab_split": ab_split}
