# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name the LB hosts where a step failed or that did not answer, from the results of its loop over the LBs.

A step on every LB runs as a loop delegated to each LB host with ignore_unreachable, ignore_errors and a
timeout: without them, an LB that does not answer marks the app host that ran the loop unreachable (it
drops out of the play), a hung connection hangs the run, and the failure names neither the LB nor the
step. The step then fails once, with the line this filter writes.

A loop runs its items one after the other. A drain that stops new requests and waits for those in flight
in one call per LB must not: the next LB would keep sending new requests while the first one waits. A
step that every play host runs can share the LBs out among the play hosts instead (``lb_share``): the
calls run at the same time, one fork per host. Each host registers the results of its own share, and
``lb_results`` puts them back together (once per LB, so the copy every host holds of a ``run_once``
loop's register reads the same)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# What Ansible says when an LB gave no answer: a step's timeout (the result's ``timedout``, "Timed out after
# N second(s)." in ansible-core 2.19, "... in the expected time frame ..." before), or a connection that
# returned no module result at all (a paused or frozen host: docker exec, ssh that hang up). A module's own
# message may say "timed out" too ("drain timed out after 300.0s: ... still busy"): that LB answered.
_TIMED_OUT_START = "timed out after"
_TIMED_OUT = ("expected time frame",)
_NO_RESULT = ("module result deserialization failed", "no start of json char found")


def _timed_out(result: dict, said: str) -> bool:
    said = said.lower()
    return bool(result.get("timedout")) or said.startswith(_TIMED_OUT_START) or any(words in said for words in _TIMED_OUT)


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
        elif _timed_out(result, said):
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


def lb_share(lbs, hosts, me: str) -> list[str]:
    """The LBs of ``lbs`` that play host ``me`` calls when every host of ``hosts`` (the play's hosts, in
    order) runs the step: every len(hosts)-th LB from its own position on, so each LB is called by exactly
    one host and, with at least as many hosts as LBs, every call runs at the same time."""
    if not isinstance(lbs, list) or not isinstance(hosts, list):
        raise AnsibleFilterError("lb_share: expected the LB hosts and the play's hosts as lists, got %s and %s"
                                 % (type(lbs).__name__, type(hosts).__name__))
    if me not in hosts:
        return []
    return [str(lb) for lb in lbs[hosts.index(me)::len(hosts)]]


def lb_results(hosts, hostvars, name: str, lbs=None) -> list[dict]:
    """The results of the step registered as ``name`` on the play hosts ``hosts``, one per LB (the first
    seen): the loop results of every host's share put back together. Each LB of ``lbs`` that has no result
    (its host left the play, or its register was lost) gets a failed one saying so: an LB the step may not
    have reached is never taken for one where it went well."""
    if not isinstance(hosts, list):
        raise AnsibleFilterError("lb_results: expected the play's hosts as a list, got %s" % type(hosts).__name__)
    merged: list[dict] = []
    seen: set[str] = set()
    for host in hosts:
        registered = hostvars[host].get(name) if host in hostvars else None
        if not isinstance(registered, dict):
            continue
        for result in _items(registered.get("results", []), "lb_results"):
            lb = str(result.get("item"))
            if lb not in seen:
                seen.add(lb)
                merged.append(result)
    for lb in lbs or []:
        if str(lb) not in seen:
            merged.append({"item": str(lb), "failed": True,
                           "msg": "no result came back from this LB (the play host that called it left the play?)"})
    return merged


class FilterModule:
    def filters(self):
        return {"lb_failed": lb_failed, "lb_failure_message": lb_failure_message, "lb_share": lb_share,
                "lb_results": lb_results}
