#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lb_request_log
short_description: Summarise what an LB answered for a service over a time window
version_added: 0.1.0
description:
  - Reads the per-request JSON log the M(fleet.rollout.haproxy) or M(fleet.rollout.nginx) role writes on an LB
    host (HAProxy - the systemd journal of its unit; nginx - C(<log_dir>/fleet-<service>.access.json)) and sums up
    the requests of one service between two times - answers per route (pool, or V(maintenance)), per status and
    per server, failed answers, and the window in which requests were not served by a running app.
  - The strategies use it to report what the LB saw, for example the downtime of a recreate rollout (first to last
    request answered with the maintenance page or by no server).
  - Reads only; changes nothing.
  - For HAProxy it also reads, through the runtime API (O(socket)), how many log lines HAProxy dropped because
    journald was behind; the counts are short by that many.
author:
  - fleet.rollout maintainers (@fleet-rollout)
options:
  lb:
    description: Which LB wrote the log.
    type: str
    choices: [haproxy, nginx]
    required: true
  service:
    description: The service (as in C(rollout_services)).
    type: str
    required: true
  since:
    description: Start of the window, seconds since the epoch.
    type: float
    required: true
  until:
    description: End of the window, seconds since the epoch. Defaults to now.
    type: float
  haproxy_unit:
    description: The systemd unit whose journal holds HAProxy's log.
    type: str
    default: haproxy.service
  nginx_log_dir:
    description: Directory of the nginx role's access logs.
    type: path
    default: /var/log/nginx
  groups:
    description:
      - Groups of servers to get per-request samples of, such as V(canary) and V(baseline) - each a list of servers
        as the LB knows them - HAProxy server names (the inventory hostnames), nginx C(address:port) (names are
        resolved on the LB host, as nginx did).
      - Returns RV(groups) - for each group the tries its servers answered, the errors among them (5xx or no
        answer) and the seconds each successful one took - the input M(fleet.rollout.canary_analysis) expects.
      - Every try counts for its server, so a failure nginx hid by retrying another server is still counted.
    type: dict
    default: {}
  by_user:
    description:
      - Also return RV(users) - per route (the pool, an A/B test's variant) and user id, the requests, errors and
        conversions (requests that reached O(goal)) - the input M(fleet.rollout.ab_report) expects, one per LB.
      - The user id is the one the LB roles log - the service's C(user_id) header or cookie.
    type: bool
    default: false
  goal:
    description: What counts as a conversion with O(by_user) - a request to this path, with this method, answered below 400.
    type: dict
    suboptions:
      method:
        description: The request method.
        type: str
        default: GET
      path:
        description: The path (without the query string).
        type: str
        required: true
  timeline_interval:
    description:
      - Also return RV(timeline) - the window's answers in buckets of this many seconds, per server (a rollout
        report's traffic share and error rate over time). V(0), the default, returns none.
    type: float
    default: 0
  timeline_servers:
    description:
      - With O(timeline_interval) on nginx, the servers as the routing file names them (C(host:port)) - RV(timeline)
        counts each under that name instead of the C(ip:port) nginx logged. HAProxy logs its server names already.
    type: list
    elements: str
    default: []
  timeline_only:
    description:
      - Return only RV(timeline), RV(since), RV(until) and RV(log_lines_dropped), reading the log line by line - for a
        long window (a whole rollout, for its report) on a busy LB, whose records would not fit in memory. Needs
        O(timeline_interval).
    type: bool
    default: false
  settle:
    description:
      - Seconds to wait before reading, so that the last requests of the window are written (the journal takes a
        moment). Waits only when O(until) is less than this long ago.
    type: float
    default: 1.0
extends_documentation_fragment:
  - fleet.rollout.attributes.read_only
  - fleet.rollout.haproxy_runtime
notes:
  - O(socket) and O(timeout) are used only with O(lb=haproxy).
  - The time window is compared with the log's own timestamps, taken on the LB host; keep LB hosts and the controller
    in time sync (NTP).
seealso:
  - module: fleet.rollout.haproxy_server
  - module: fleet.rollout.nginx_upstream
"""

EXAMPLES = r"""
- name: What the LBs answered during the switch
  fleet.rollout.lb_request_log:
    lb: haproxy
    service: shop
    since: "{{ switch_started }}"
    until: "{{ switch_ended }}"
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'] }}"
  register: lb_log

- name: Show the downtime seen by each LB
  ansible.builtin.debug:
    msg: "{{ lb_log.results | map(attribute='unserved.seconds') }}"
"""

RETURN = r"""
requests:
  description: Requests of the service answered in the window.
  returned: unless O(timeline_only)
  type: int
  sample: 1200
by_route:
  description: Answers per route, a pool name or V(maintenance).
  returned: unless O(timeline_only)
  type: dict
  sample: {main: 1100, maintenance: 100}
by_status:
  description: Answers per HTTP status.
  returned: unless O(timeline_only)
  type: dict
  sample: {"200": 1100, "503": 100}
by_server:
  description: Answers per server (HAProxy server name, or the address nginx reached).
  returned: unless O(timeline_only)
  type: dict
failed_answers:
  description: Answers with a 5xx status other than the maintenance page.
  returned: unless O(timeline_only)
  type: int
consecutive_failed:
  description: The longest run of failed answers one after another (in the order the LB logged them).
  returned: unless O(timeline_only)
  type: int
maintenance:
  description: C(answers), the maintenance page's count, and C(max_seconds), the slowest of them.
  returned: unless O(timeline_only)
  type: dict
  sample: {answers: 100, max_seconds: 0.0}
unserved:
  description:
    - Requests no running app served (the maintenance page, or an error with no server) - C(answers), C(first) and
      C(last) (epoch seconds, null when none) and C(seconds) from the first to the end of the last.
  returned: unless O(timeline_only)
  type: dict
  sample: {answers: 100, first: 1795000000.1, last: 1795000004.3, seconds: 4.2}
since:
  description: The window's start.
  returned: always
  type: float
until:
  description: The window's end.
  returned: always
  type: float
groups:
  description:
    - For each group of O(groups) - C(requests) (tries of its servers), C(errors), C(latencies) (seconds of
      each successful try) and C(consecutive_errors) (the longest run of the group's tries that failed one after
      another).
  returned: unless O(timeline_only)
  type: dict
  sample: {canary: {requests: 120, errors: 0, latencies: [0.004, 0.005], consecutive_errors: 0},
           baseline: {requests: 1100, errors: 0, latencies: [0.004], consecutive_errors: 0}}
users:
  description: With O(by_user), per route and user id - C(requests), C(errors) and C(conversions); null without.
  returned: unless O(timeline_only)
  type: dict
  sample: {a: {"user-1": {requests: 4, errors: 0, conversions: 1}}, b: {"user-2": {requests: 2, errors: 0, conversions: 0}}}
timeline:
  description:
    - With O(timeline_interval), one entry per bucket of the window - C(t) (its start), C(requests), C(errors) (5xx
      other than the maintenance page, or no answer), C(maintenance) and C(by_server) (C(pool/server) - [requests,
      errors]); null without.
  returned: always
  type: list
  elements: dict
  sample: [{t: 1795000000.0, requests: 51, errors: 0, maintenance: 0, by_server: {main/app1: [13, 0], main/app2: [38, 0]}}]
log_lines_dropped:
  description:
    - HAProxy's C(DroppedLogs) counter, log lines it could not write since it started (it never blocks on its log).
      It is the running worker's count, so a reload starts it again from 0.
      Compare two readings to know how many records of a window may be missing. Null for nginx, or when the runtime
      API could not be read.
  returned: always
  type: int
  sample: 0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import RuntimeClient
from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import (
    group_samples, haproxy_dropped_logs, iter_haproxy_records, iter_nginx_records, nginx_addresses, stream_file_lines,
    stream_haproxy_journal, summarize, timeline, user_samples, wait_for_window,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lb=dict(type="str", choices=["haproxy", "nginx"], required=True),
            service=dict(type="str", required=True),
            since=dict(type="float", required=True),
            until=dict(type="float"),
            haproxy_unit=dict(type="str", default="haproxy.service"),
            nginx_log_dir=dict(type="path", default="/var/log/nginx"),
            groups=dict(type="dict", default={}),
            settle=dict(type="float", default=1.0),
            socket=dict(type="str", default="/run/haproxy/admin.sock"),
            timeout=dict(type="float", default=10.0),
            by_user=dict(type="bool", default=False),
            timeline_interval=dict(type="float", default=0.0),
            timeline_servers=dict(type="list", elements="str", default=[]),
            timeline_only=dict(type="bool", default=False),
            goal=dict(type="dict", options=dict(method=dict(type="str", default="GET"),
                                                path=dict(type="str", required=True))),
        ),
        supports_check_mode=True,
    )
    p = module.params
    groups = {}
    for name, servers in p["groups"].items():
        if not isinstance(servers, list) or not all(isinstance(server, str) for server in servers):
            module.fail_json(msg="groups.%s: expected a list of server names, got %r" % (name, servers))
        groups[name] = servers
    if p["timeline_only"] and not p["timeline_interval"]:
        module.fail_json(msg="timeline_only needs timeline_interval (seconds per bucket)")
    try:
        until = wait_for_window(p["service"], p["since"], p["until"], p["settle"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["timeline_only"]:
        module.exit_json(changed=False, since=p["since"], until=until, **_timeline_only(module, until))
    try:
        records = list(_records(module))
        dropped = _dropped(p)
        if p["lb"] == "nginx":
            addresses = nginx_addresses(server for servers in groups.values() for server in servers)
            groups = {name: [a for server in servers for a in addresses[server]] for name, servers in groups.items()}
        samples = group_samples(records, groups, p["since"], until)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    users = user_samples(records, p["since"], until, p["goal"]) if p["by_user"] else None
    buckets = None
    if p["timeline_interval"]:
        try:
            buckets = timeline(records, p["since"], until, p["timeline_interval"], _timeline_names(p))
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    module.exit_json(changed=False, log_lines_dropped=dropped, groups=samples, users=users, timeline=buckets,
                     **summarize(records, p["since"], until))


def _timeline_names(p) -> dict:
    if p["lb"] != "nginx":
        return {}
    return {address: server for server, found in nginx_addresses(p["timeline_servers"]).items() for address in found}


def _records(module):
    """The service's records of the LB's log, read line by line."""
    p = module.params
    if p["lb"] == "haproxy":
        journalctl = module.get_bin_path("journalctl", required=True)
        return iter_haproxy_records(stream_haproxy_journal(p["haproxy_unit"], p["since"], journalctl), p["service"])
    path = os.path.join(p["nginx_log_dir"], "fleet-%s.access.json" % p["service"])
    return iter_nginx_records(stream_file_lines(path), p["service"])


def _dropped(p):
    return haproxy_dropped_logs(RuntimeClient(p["socket"], p["timeout"])) if p["lb"] == "haproxy" else None


def _timeline_only(module, until: float) -> dict:
    """The timeline alone, the records counted as they are read: a whole rollout's log of a busy LB never sits in
    memory."""
    p = module.params
    try:
        buckets = timeline(_records(module), p["since"], until, p["timeline_interval"], _timeline_names(p))
        dropped = _dropped(p)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    return {"timeline": buckets, "log_lines_dropped": dropped}


if __name__ == "__main__":
    main()
