# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name the LB hosts a step could not reach, from the results of its loop over the LBs.

A step on every LB runs as a loop delegated to each LB host with ignore_unreachable: without it,
Ansible marks the app host that ran the loop unreachable and drops it from the play, and the
failure names neither the LB nor the step."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def lb_unreachable(results) -> list[str]:
    """The LB hosts (loop items) whose result is unreachable."""
    if not isinstance(results, list):
        raise AnsibleFilterError("lb_unreachable: expected the results of a loop over the LB hosts, got %s"
                                 % type(results).__name__)
    return [str(r.get("item")) for r in results if isinstance(r, dict) and r.get("unreachable")]


def lb_unreachable_message(results, step: str) -> str:
    """A failure line naming each LB not reached while doing ``step``, with what the connection said."""
    lost, seen = [], set()
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and result.get("unreachable") and result.get("item") not in seen:
            seen.add(result.get("item"))
            lost.append(result)
    if not lost:
        return ""
    return "could not reach LB %s while %s (%s); the other LBs were done" % (
        ", ".join(str(r.get("item")) for r in lost), step,
        "; ".join("%s: %s" % (r.get("item"), " ".join(str(r.get("msg") or "no answer").split())[:200]) for r in lost))


class FilterModule:
    def filters(self):
        return {"lb_unreachable": lb_unreachable, "lb_unreachable_message": lb_unreachable_message}
