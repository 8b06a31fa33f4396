# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the run holding a rollout lock is certainly gone, so the next run may take the lock over."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.plugin_utils._controller_run import run_gone


def lock_run_gone(holder, me) -> dict:
    """{"gone": bool, "why": str} for a lock holder as fleet.rollout.rollout_lock returns it."""
    if not isinstance(holder, dict):
        return {"gone": False, "why": "no lock is held"}
    # The LB side cannot see controller PIDs: this runs on the controller, with what the lock recorded.
    gone, why = run_gone(holder.get("info"), me)
    return {"gone": gone, "why": why}


class FilterModule:
    def filters(self):
        return {"lock_run_gone": lock_run_gone}
