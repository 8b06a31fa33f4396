# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: controller_run
author: fleet.rollout maintainers (@fleet-rollout)
version_added: 0.1.0
short_description: Which ansible-playbook run on which controller this is
description:
  - Names the C(ansible-playbook) process running this play on the controller - machine id, boot id, PID
    namespace, PID and the process start time - so a rollout lock can record it.
  - A later run on the same controller reads that record with the P(fleet.rollout.lock_run_gone#filter) filter
    to tell whether the run that took the lock is certainly gone, and only then takes the lock over.
  - Linux controllers only; elsewhere the ids are empty and no lock is ever found gone.
notes:
  - Templating runs in worker processes forked from C(ansible-playbook); the lookup names the main process, the
    top of the first chain of ancestors whose command line is C(ansible-playbook) (its own or its interpreter's
    first argument). Without one it names the parent process.
"""

EXAMPLES = r"""
- name: Take the rollout lock, recording this run
  fleet.rollout.rollout_lock:
    service: shop
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    info:
      strategy: ramped
      controller: "{{ lookup('fleet.rollout.controller_run') }}"
"""

RETURN = r"""
_raw:
  description: One dict describing this run.
  type: list
  elements: dict
  contains:
    machine_id:
      description: C(/etc/machine-id) (or C(/var/lib/dbus/machine-id)); empty when neither exists.
      type: str
    boot_id:
      description: C(/proc/sys/kernel/random/boot_id), new at every boot; empty when unreadable.
      type: str
    pid_ns:
      description: The PID namespace, for example C(pid:[4026531836]); PIDs only mean something inside it.
      type: str
    pid:
      description: The PID of the C(ansible-playbook) process.
      type: int
    pid_start:
      description: Its start time in clock ticks since boot (field 22 of C(/proc/<pid>/stat)); 0 when unknown.
      type: int
    host:
      description: The controller's host name, for messages.
      type: str
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.fleet.rollout.plugins.plugin_utils._controller_run import identify


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [identify()]
