#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Drain, disable, enable and weight many HAProxy servers at once
version_added: 0.1.0
description:
  - Sets the admin state (V(ready), V(drain), V(maint)) and/or the weight of one or many HAProxy
    servers through the runtime API, without a reload.
  - Waits until drained servers have no sessions and no queue. A server that is already DOWN or in
    maintenance counts as drained at once, so waiting never hangs on it.
  - Saves the resulting server state to the C(server-state-file), so a reload keeps drained servers
    drained and changed weights changed (needs C(load-server-state-from-file global) in the config).
  - Does everything C(community.general.haproxy) does for servers, for many servers in one task, with
    check mode and diff mode.
author:
  - fleet.rollout maintainers (@fleet-rollout)
extends_documentation_fragment:
  - fleet.rollout.haproxy_runtime
attributes:
  check_mode:
    support: full
    description: Reads the current state and reports what would change; sends no command.
  diff_mode:
    support: full
    description: Shows state and weight of each changed server before and after.
options:
  servers:
    description:
      - The servers to act on, each as V(backend/server), V(backend/*) (every server of a backend), or a
        bare server name (that server in every backend that has it).
      - A selector that matches nothing fails the task before anything changes, listing the servers
        that exist.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(ready) takes new traffic; V(drain) keeps serving open sessions (and requests with its
        persistence cookie) but gets no new ones; V(maint) gets no traffic at all and stops health checks.
    type: str
    choices: [ready, drain, maint]
  weight:
    description:
      - An absolute weight V(0)-V(256), or a percentage of the server's configured weight such as V(50%).
    type: str
  wait:
    description:
      - With O(state=drain) or O(state=maint), wait until every selected server has no session and no
        queued request.
    type: bool
    default: true
  drain_timeout:
    description:
      - Seconds to wait for the drain before O(on_timeout) applies.
    type: float
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at the servers' sessions while waiting.
    type: float
    default: 1
  drained_polls:
    description:
      - Consecutive polls an UP server must show no session and no queue to count as drained.
    type: int
    default: 2
  on_timeout:
    description:
      - V(fail) leaves the servers as they are (drained, still finishing sessions) and fails the task.
      - V(force) puts the servers that are still busy into maintenance and shuts their sessions down.
      - V(report) leaves them as they are and returns without failing; each server's RV(servers[].drained) and
        C(after.sessions) say what is left, so a drain can be waited for in rounds that report progress.
    type: str
    choices: [fail, force, report]
    default: fail
  health_checks:
    description:
      - V(true) enables, V(false) disables the servers' health checks (C(enable health)/C(disable health)).
      - Enabling checks that the config does not define fails before anything changes; disabling them is then
        a no-op. Omit to leave them as they are.
    type: bool
  agent_checks:
    description:
      - The same for agent checks (C(enable agent)/C(disable agent)).
    type: bool
  shutdown_sessions:
    description:
      - With O(state=maint), shut down the servers' open sessions at once instead of letting them finish.
    type: bool
    default: false
  persist:
    description:
      - After a change, write C(show servers state) to O(state_file) so a reload restores it.
    type: bool
    default: true
  state_file:
    description:
      - The path the HAProxy config names in C(server-state-file). Its directory must exist.
    type: path
    default: /var/lib/haproxy/server-state
notes:
  - Runtime changes live in the running process only; O(persist) is what carries them over a reload.
seealso:
  - module: fleet.rollout.haproxy_map
  - module: community.general.haproxy
"""

EXAMPLES = r"""
- name: Drain two servers from every LB, waiting until their requests finish
  fleet.rollout.haproxy_server:
    servers: [app1, app2]
    state: drain
    drain_timeout: 120
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'] }}"

- name: Wait for the same drain in rounds of 10 s, each one saying how many sessions are left
  fleet.rollout.haproxy_server:
    servers: [app1, app2]
    state: drain
    drain_timeout: 10
    on_timeout: report
  register: drain
  until: drain.servers | rejectattr('drained') | length == 0
  retries: 12
  delay: 0

- name: Put one server back, at half its configured weight (slow start)
  fleet.rollout.haproxy_server:
    servers: [be_shop/app1]
    state: ready
    weight: 50%

- name: Take a whole backend out, cutting sessions that outlive 30 seconds
  fleet.rollout.haproxy_server:
    servers: ["be_shop_green/*"]
    state: maint
    drain_timeout: 30
    on_timeout: force

- name: Restore full weight everywhere
  fleet.rollout.haproxy_server:
    servers: ["be_shop/*"]
    weight: 100%
"""

RETURN = r"""
servers:
  description: One entry per selected server, in the order they were selected.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(backend/server).
      type: str
      sample: be_shop/app1
    backend:
      description: Backend name.
      type: str
    server:
      description: Server name.
      type: str
    changed:
      description: Whether a command was sent for this server.
      type: bool
    before:
      description: >-
        State before the task: C(admin_state) (V(ready), V(drain), V(maint)), C(status) (HAProxy's, such
        as V(UP), V(DOWN), V(DRAIN), V(MAINT)), C(weight), C(initial_weight), C(sessions), C(queued),
        C(health_checks) and C(agent_checks) (true, false, or null when not configured).
      type: dict
      sample: {admin_state: ready, status: UP, weight: 100, initial_weight: 100, sessions: 3, queued: 0,
               health_checks: true, agent_checks: null}
    after:
      description: The same fields read back after the task (planned values in check mode).
      type: dict
    drained:
      description: Whether the server drained in time; null when not waiting.
      type: bool
    drain_seconds:
      description: Seconds until it was drained; null when not waiting or not drained.
      type: float
      sample: 1.52
    forced:
      description: Whether its sessions were shut down (O(shutdown_sessions), or O(on_timeout=force) after a timeout).
      type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyRuntimeError, RuntimeClient
from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_server import DrainTimeout, converge, parse_weight


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default="/run/haproxy/admin.sock"),
            timeout=dict(type="float", default=10.0),
            servers=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["ready", "drain", "maint"]),
            weight=dict(type="str"),
            wait=dict(type="bool", default=True),
            drain_timeout=dict(type="float", default=300.0),
            poll_interval=dict(type="float", default=1.0),
            drained_polls=dict(type="int", default=2),
            on_timeout=dict(type="str", choices=["fail", "force", "report"], default="fail"),
            persist=dict(type="bool", default=True),
            state_file=dict(type="path", default="/var/lib/haproxy/server-state"),
            health_checks=dict(type="bool"),
            agent_checks=dict(type="bool"),
            shutdown_sessions=dict(type="bool", default=False),
        ),
        required_one_of=[("state", "weight", "health_checks", "agent_checks")],
        supports_check_mode=True,
    )
    p = module.params
    problems = []
    if not p["servers"] or any(not s or not s.strip() for s in p["servers"]):
        problems.append("servers: give at least one non-empty selector (backend/server, backend/*, or server)")
    if p["weight"] is not None:
        try:
            # The syntax and range of the spec; a percentage is checked per server against its configured weight.
            parse_weight(p["weight"], 1)
        except ValueError as exc:
            problems.append(str(exc))
    for name in ("drain_timeout", "poll_interval", "timeout"):
        if p[name] <= 0:
            problems.append("%s must be above 0, got %s" % (name, p[name]))
    if p["drained_polls"] < 1:
        problems.append("drained_polls must be at least 1, got %s" % p["drained_polls"])
    if p["persist"] and not module.check_mode and not os.path.isdir(os.path.dirname(p["state_file"])):
        problems.append("state_file: directory %s does not exist; point state_file at the path of server-state-file "
                        "in haproxy.cfg, or set persist=false" % os.path.dirname(p["state_file"]))
    if p["shutdown_sessions"] and p["state"] != "maint":
        problems.append("shutdown_sessions needs state=maint (a drained server is meant to finish its sessions)")
    if problems:
        module.fail_json(msg="; ".join(problems))

    try:
        client = RuntimeClient(p["socket"], p["timeout"])
        client.check()
        result = converge(
            client, [s.strip() for s in p["servers"]], state=p["state"], weight=p["weight"], wait=p["wait"],
            drain_timeout=p["drain_timeout"], poll_interval=p["poll_interval"], drained_polls=p["drained_polls"],
            on_timeout=p["on_timeout"], persist_path=p["state_file"] if p["persist"] else None,
            check_mode=module.check_mode, health_checks=p["health_checks"], agent_checks=p["agent_checks"],
            shutdown_sessions=p["shutdown_sessions"],
        )
    except DrainTimeout as exc:
        module.fail_json(msg=str(exc), **_without_diff(exc.result))
    except (HAProxyRuntimeError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


def _without_diff(result):
    return {key: value for key, value in result.items() if key != "diff"}


if __name__ == "__main__":
    main()
