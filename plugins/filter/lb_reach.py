# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name the LB hosts where a step failed or that did not answer, from the results of its loop over the LBs.

A step on every LB runs as a loop delegated to each LB host with ignore_unreachable, ignore_errors and a
timeout: without them, an LB that does not answer marks the app host that ran the loop unreachable (it
drops out of the play), a hung connection hangs the run, and the failure names neither the LB nor the
step. The step then fails once, with the line this filter writes."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# What Ansible says when an LB gave no answer: a step's timeout, or a connection that returned no module
# result at all (a paused or frozen host: docker exec, ssh that hang up).
_TIMED_OUT = ("expected time frame", "timed out")
_NO_RESULT = ("module result deserialization failed", "no start of json char found")


def _items(results, name: str) -> list[dict]:
    if not isinstance(results, list):
        raise AnsibleFilterError("%s: expected the results of a loop over the LB hosts, got %s"
                                 % (name, type(results).__name__))
    return [r for r in results if isinstance(r, dict)]


def _bad(result: dict) -> bool:
    return bool(result.get("unreachable") or result.get("failed"))


def lb_failed(results) -> list[str]:
    """The LB hosts (loop items) whose result is unreachable or failed, each once."""
    seen: list[str] = []
    for result in _items(results, "lb_failed"):
        if _bad(result) and str(result.get("item")) not in seen:
            seen.append(str(result.get("item")))
    return seen


def lb_failure_message(results, step: str) -> str:
    """One line for the step: each LB that did not answer (unreachable, or no answer within the step's
    timeout) and each LB where it failed, with what Ansible or the module said. Empty when none."""
    lost, failed, seen = [], [], set()
    for result in _items(results, "lb_failure_message"):
        lb = str(result.get("item"))
        if not _bad(result) or lb in seen:
            continue
        seen.add(lb)
        said = " ".join(str(result.get("msg") or "no answer").split())[:300]
        if any(words in said.lower() for words in _NO_RESULT):
            lost.append("%s: no module result came back (the host is paused, frozen or its connection broke)" % lb)
        elif result.get("unreachable"):
            lost.append("%s: %s" % (lb, said))
        elif any(words in said.lower() for words in _TIMED_OUT):
            lost.append("%s: no answer within the step's timeout" % lb)
        else:
            failed.append("%s: %s" % (lb, said))
    parts = []
    if lost:
        parts.append("could not reach LB %s while %s (%s)" % (
            ", ".join(item.split(":", 1)[0] for item in lost), step, "; ".join(lost)))
    if failed:
        names = ", ".join(item.split(":", 1)[0] for item in failed)
        parts.append("%s failed on LB %s (%s)" % (step, names, "; ".join(failed)))
    return "; ".join(parts)


class FilterModule:
    def filters(self):
        return {"lb_failed": lb_failed, "lb_failure_message": lb_failure_message}
