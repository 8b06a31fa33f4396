# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout events (started, step, ..., succeeded) as the strategies send them, and the checks of their input."""

from __future__ import annotations

import os

from ansible_collections.fleet.rollout.plugins.module_utils._rollout_event import build, final_event, webhook_problems


def rollout_event(name, run, step=None, verdict=None, record=None, report=None) -> dict:
    """The event ``name`` of the run ``run`` (service, strategy, version, id, owner, started)."""
    return build(name, run if isinstance(run, dict) else {}, step=step, verdict=verdict, record=record, report=report)


def rollout_final_event(record, error="", override="") -> str:
    """The name of the event a run ends with, from the event it recorded in the LB history."""
    return final_event(record, error=error or "", override=override or "")


def rollout_notify_problems(webhooks, tasks=None, timeout=5) -> list[str]:
    """What is wrong with rollout_notify_webhooks, rollout_notify_tasks and rollout_notify_timeout."""
    problems = ["rollout_notify_webhooks: " + problem for problem in webhook_problems(webhooks)]
    if not isinstance(tasks, list) or not all(isinstance(path, str) and path for path in tasks):
        problems.append("rollout_notify_tasks: expected a list of task file paths, got %r" % (tasks,))
    else:
        # Checked here, on the controller, before anything changes: a missing file would only be a warning later,
        # at every event. Absolute, since an include's relative path depends on the role that includes it.
        for path in tasks:
            if not os.path.isabs(path):
                problems.append("rollout_notify_tasks: expected an absolute path (such as "
                                "{{ inventory_dir }}/hooks/events.yml), got %r" % path)
            elif not os.path.isfile(path):
                problems.append("rollout_notify_tasks: no such file on the controller: %s" % path)
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(timeout, bool) or not 0 < seconds <= 60:
        problems.append("rollout_notify_timeout: expected seconds above 0 and at most 60, got %r" % (timeout,))
    return problems


class FilterModule:
    def filters(self):
        return {"rollout_event": rollout_event, "rollout_final_event": rollout_final_event,
                "rollout_notify_problems": rollout_notify_problems}
