#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_upstream
short_description: Own the upstream and routing include file of a service behind nginx
version_added: 0.1.0
description:
  - Writes one nginx include file from structured data, namely C(upstream) blocks whose servers carry
    C(weight), C(max_fails), C(fail_timeout), C(backup) and C(down), and routing blocks (C(map),
    C(split_clients)) that pick an upstream per request.
  - Validates the whole configuration with C(nginx -t) before it is activated, then reloads nginx gracefully
    and confirms that a new generation of worker processes started. When validation or the reload fails,
    the previous file is restored (and nginx reloaded with it), so nginx keeps serving.
  - Optionally waits until the old worker processes have exited, that is until the requests they were serving
    have finished. This is what "drained" means for open source nginx, which has no runtime API.
  - Unchanged content runs no nginx command at all, so there is no reload.
author:
  - fleet.rollout maintainers (@fleet-rollout)
extends_documentation_fragment:
  - fleet.rollout.nginx
attributes:
  check_mode:
    support: full
    description: Renders the file and compares it with the one on disk; writes nothing and runs no nginx command.
  diff_mode:
    support: full
    description: Shows the file's content before and after.
options:
  path:
    description:
      - The include file the module owns, included from the C(http) context of O(nginx_config)
        (for example by C(include /etc/nginx/conf.d/*.conf)). Its directory must exist.
      - The whole file is rewritten; do not put anything else in it.
    type: path
    required: true
  state:
    description:
      - V(present) writes the file from O(upstreams), O(maps) and O(split_clients) (at least one of them).
      - V(absent) removes the file, validates and reloads. It fails, and the file stays, when the rest of the
        configuration still uses what the file defines.
    type: str
    choices: [present, absent]
    default: present
  upstreams:
    description:
      - C(upstream) blocks, written in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The upstream's name (letters, digits, C(_), C(.), C(-)), as used in C(proxy_pass http://NAME) or as
            the value of a routing variable.
        type: str
        required: true
      servers:
        description:
          - The servers of the upstream, at least one.
        type: list
        elements: dict
        required: true
        suboptions:
          address:
            description:
              - V(host:port), V([ipv6]:port) or V(unix:/path). A host name must resolve when nginx reads the
                configuration, otherwise C(nginx -t) fails and nothing changes.
            type: str
            required: true
          weight:
            description:
              - Relative weight, at least V(1). nginx rejects V(0); take a server out with O(upstreams[].servers[].down).
            type: int
          down:
            description:
              - Mark the server as permanently unavailable. This is how a server is drained in nginx, followed by
                the reload the module does (see O(wait_workers)).
            type: bool
            default: false
          backup:
            description:
              - Send requests here only when the other servers are unavailable.
              - Not allowed with O(upstreams[].method) V(ip_hash), V(hash) or V(random).
            type: bool
            default: false
          max_fails:
            description:
              - Failed attempts within O(upstreams[].servers[].fail_timeout) after which the server counts as
                unavailable; V(0) disables the accounting.
            type: int
          fail_timeout:
            description:
              - Seconds, for both the failure window and how long the server then counts as unavailable.
            type: int
      method:
        description:
          - The load balancing method. V(round_robin) is nginx's default and writes no directive.
        type: str
        choices: [round_robin, least_conn, ip_hash, random, hash]
        default: round_robin
      hash_key:
        description:
          - What V(hash) hashes, such as V($cookie_uid) or V($remote_addr$http_user_agent). Required with
            O(upstreams[].method=hash), not allowed otherwise.
        type: str
      keepalive:
        description:
          - Idle keep-alive connections to the servers that each worker keeps open. The proxying location needs
            C(proxy_http_version 1.1) and an empty C(Connection) header for them to be used.
        type: int
  maps:
    description:
      - C(map) blocks that set a variable from another one, for example the upstream to use from a cookie or a
        header (A/B testing, preview routes, blue/green flips).
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description:
          - The value to look up, with nginx variables, such as V($cookie_variant) or V($http_x_variant).
        type: str
        required: true
      variable:
        description:
          - The variable to define, such as V($fleet_pool).
        type: str
        required: true
      default:
        description:
          - The value when no entry matches. Without it, the variable is empty then.
        type: str
      entries:
        description:
          - Source values and what they map to, in this order. nginx compares plain keys case-insensitively;
            a key starting with C(~) is a regular expression (C(~*) ignores case) tried in order after the plain
            keys.
        type: list
        elements: dict
        default: []
        suboptions:
          key:
            description:
              - The source value. V(default) and V(include) are parameters of nginx's map block; write V(\\default)
                to match the literal word.
            type: str
            required: true
          value:
            description:
              - The resulting value; may contain variables.
            type: str
            required: true
  split_clients:
    description:
      - C(split_clients) blocks that set a variable by a hash of a key, for sticky percentage splits (canary,
        A/B testing).
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description:
          - What is hashed (MurmurHash2), such as V(${remote_addr}${http_user_agent}) or V($cookie_uid). The same key
            always lands in the same bucket while the buckets stay the same.
        type: str
        required: true
      variable:
        description:
          - The variable to define, such as V($fleet_variant).
        type: str
        required: true
      buckets:
        description:
          - The shares in this order. Each takes O(split_clients[].buckets[].percent) of the hash space; one bucket
            without a percent (or with V(*)) takes the rest and is written last. The percentages add up to 100 at
            most; with no rest bucket, the remaining share gets an empty value.
        type: list
        elements: dict
        required: true
        suboptions:
          percent:
            description:
              - A share above 0 with at most two decimals (nginx splits in 0.01 % steps), such as V(5), V(12.5) or
                V(12.5%); V(*) or nothing for the rest.
            type: raw
          value:
            description:
              - The value of the variable for this bucket; may contain variables.
            type: str
            required: true
  validate:
    description:
      - Run C(nginx -t) on the configuration with the new file before activating it. Leave it on, since it is
        what keeps a bad file from breaking the next reload or restart.
    type: bool
    default: true
  reload:
    description:
      - Reload nginx gracefully (C(nginx -s reload)) after a change. When nginx is not running the new file stays
        in place, nothing is reloaded and the module warns.
    type: bool
    default: true
  wait_workers:
    description:
      - After the reload, wait until the old worker processes have exited, that is until every request that was in
        flight at the reload has finished.
      - When the file is already as asked (no reload), wait for the worker processes an earlier reload left
        shutting down. A drain can so be started by one task and waited for by the next ones, in rounds that
        report what is left (O(on_timeout=report)).
    type: bool
    default: false
  worker_timeout:
    description:
      - Seconds to wait with O(wait_workers) before O(on_timeout) applies. The new configuration stays active when
        the wait times out; nginx's own C(worker_shutdown_timeout) bounds how long old workers live.
    type: float
    default: 60
  on_timeout:
    description:
      - What a O(wait_workers) timeout does. V(fail) fails the task.
      - V(report) returns without failing; RV(workers_left) and RV(connections_left) say what is still in flight.
    type: str
    choices: [fail, report]
    default: fail
notes:
  - Failed validation or reload leaves the previous file in place, so the result then has C(changed=false).
  - The file starts with a comment saying that this module manages it. Identical input always renders the same
    bytes, so a second run reports no change and does not reload.
seealso:
  - module: fleet.rollout.haproxy_server
  - name: nginx upstream module
    description: Directives of the upstream block.
    link: https://nginx.org/en/docs/http/ngx_http_upstream_module.html
  - name: nginx split_clients module
    description: Percentage splits by hash.
    link: https://nginx.org/en/docs/http/ngx_http_split_clients_module.html
"""

EXAMPLES = r"""
- name: Blue and green pools, with a cookie that previews green
  fleet.rollout.nginx_upstream:
    path: /etc/nginx/conf.d/shop-upstreams.conf
    upstreams:
      - name: shop_blue
        method: least_conn
        keepalive: 16
        servers:
          - {address: "10.0.0.11:8080", max_fails: 3, fail_timeout: 10}
          - {address: "10.0.0.12:8080", max_fails: 3, fail_timeout: 10}
      - name: shop_green
        servers:
          - address: "10.0.0.21:8080"
          - address: "10.0.0.22:8080"
    maps:
      - source: $cookie_preview
        variable: $shop_pool
        default: shop_blue
        entries:
          - {key: green, value: shop_green}
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'] }}"

- name: Canary step, 10 % of users (sticky by user id cookie) to the canary pool
  fleet.rollout.nginx_upstream:
    path: /etc/nginx/conf.d/shop-upstreams.conf
    upstreams:
      - name: shop_stable
        servers: [{address: "10.0.0.11:8080"}, {address: "10.0.0.12:8080"}]
      - name: shop_canary
        servers: [{address: "10.0.0.21:8080"}]
    split_clients:
      - key: "${cookie_uid}${remote_addr}"
        variable: $shop_pool
        buckets:
          - {percent: 10, value: shop_canary}
          - {percent: "*", value: shop_stable}

- name: Drain app1 and wait until the requests it was serving have finished
  fleet.rollout.nginx_upstream:
    path: /etc/nginx/conf.d/shop-upstreams.conf
    upstreams:
      - name: shop
        servers:
          - {address: "10.0.0.11:8080", down: true}
          - {address: "10.0.0.12:8080"}
    wait_workers: true
    worker_timeout: 120

- name: The same drain, waited for in rounds of 10 s that say what is still in flight
  fleet.rollout.nginx_upstream:
    path: /etc/nginx/conf.d/shop-upstreams.conf
    upstreams:
      - name: shop
        servers:
          - {address: "10.0.0.11:8080", down: true}
          - {address: "10.0.0.12:8080"}
    wait_workers: true
    worker_timeout: 10
    on_timeout: report
  register: drain
  until: drain.workers_left == 0
  retries: 12
  delay: 0

- name: Remove the service's upstreams once nothing refers to them
  fleet.rollout.nginx_upstream:
    path: /etc/nginx/conf.d/shop-upstreams.conf
    state: absent
"""

RETURN = r"""
path:
  description: The include file.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/shop-upstreams.conf
reloaded:
  description: Whether nginx was reloaded and started a new generation of worker processes.
  returned: always
  type: bool
old_workers:
  description:
    - Number of worker processes of the generation before the reload.
    - Without a reload, with O(wait_workers), the number of workers still shutting down from an earlier reload;
      otherwise V(0).
  returned: always
  type: int
  sample: 4
workers_exited_seconds:
  description:
    - Seconds from the reload (without a reload, from the start of the wait) until every old worker process had
      exited.
    - Null when O(wait_workers) is off, there was nothing to wait for, or the wait timed out.
  returned: always
  type: float
  sample: 1.532
workers_left:
  description:
    - Old worker processes still running when the wait ended (V(0) once they all exited).
    - Null when O(wait_workers) is off or there was nothing to wait for.
  returned: always
  type: int
  sample: 1
connections_left:
  description:
    - Open connections of those old workers to each upstream server, by its address as given in O(upstreams)
      (requests still in flight to it). Read from C(/proc), since nginx has no runtime API.
    - Null when O(wait_workers) is off, there was nothing to wait for, or C(/proc) does not show the workers'
      sockets (root without C(CAP_SYS_PTRACE), as in some containers).
  returned: always
  type: dict
  sample: {"10.0.0.11:8080": 2, "10.0.0.12:8080": 0}
applied_at:
  description:
    - When the reload was sent (epoch seconds, the LB host's clock). Old workers stop accepting connections
      once the new generation is up; requests in flight finish on the old configuration.
    - Null when there was no reload.
  returned: always
  type: float
  sample: 1795792312.418
diff:
  description: The file's content before and after (empty when it does not exist).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Content before.
      type: str
    after:
      description: Content after (planned content in check mode).
      type: str
    before_header:
      description: The path.
      type: str
    after_header:
      description: The path.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._nginx_upstream import NginxApplyError, apply, check_routing, render

SERVER_SPEC = dict(
    address=dict(type="str", required=True),
    weight=dict(type="int"),
    down=dict(type="bool", default=False),
    backup=dict(type="bool", default=False),
    max_fails=dict(type="int"),
    fail_timeout=dict(type="int"),
)

UPSTREAM_SPEC = dict(
    name=dict(type="str", required=True),
    servers=dict(type="list", elements="dict", required=True, options=SERVER_SPEC),
    method=dict(type="str", choices=["round_robin", "least_conn", "ip_hash", "random", "hash"], default="round_robin"),
    hash_key=dict(type="str", no_log=False),
    keepalive=dict(type="int"),
)

MAP_SPEC = dict(
    source=dict(type="str", required=True),
    variable=dict(type="str", required=True),
    default=dict(type="str"),
    entries=dict(type="list", elements="dict", default=[], options=dict(
        key=dict(type="str", required=True, no_log=False),
        value=dict(type="str", required=True),
    )),
)

SPLIT_SPEC = dict(
    key=dict(type="str", required=True, no_log=False),
    variable=dict(type="str", required=True),
    buckets=dict(type="list", elements="dict", required=True, options=dict(
        percent=dict(type="raw"),
        value=dict(type="str", required=True),
    )),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            upstreams=dict(type="list", elements="dict", default=[], options=UPSTREAM_SPEC),
            maps=dict(type="list", elements="dict", default=[], options=MAP_SPEC),
            split_clients=dict(type="list", elements="dict", default=[], options=SPLIT_SPEC),
            validate=dict(type="bool", default=True),
            reload=dict(type="bool", default=True),
            wait_workers=dict(type="bool", default=False),
            worker_timeout=dict(type="float", default=60.0),
            on_timeout=dict(type="str", choices=["fail", "report"], default="fail"),
            nginx_binary=dict(type="str", default="nginx"),
            nginx_config=dict(type="path", default="/etc/nginx/nginx.conf"),
            nginx_prefix=dict(type="path"),
            pid_file=dict(type="path", default="/run/nginx.pid"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    routing = dict(upstreams=p["upstreams"], maps=p["maps"], split_clients=p["split_clients"])
    problems = []
    if not os.path.isabs(p["path"]):
        problems.append("path: expected an absolute path, got %r" % p["path"])
    if p["worker_timeout"] <= 0:
        problems.append("worker_timeout must be above 0, got %s" % p["worker_timeout"])
    if not p["nginx_binary"] or not p["nginx_binary"].strip():
        problems.append("nginx_binary: expected the name or path of the nginx executable")
    if p["state"] == "present":
        if not any(routing.values()):
            problems.append("state=present: give at least one of upstreams, maps or split_clients "
                            "(use state=absent to remove the file)")
        problems.extend(check_routing(**routing))
    elif any(routing.values()):
        problems.append("state=absent removes the file: upstreams, maps and split_clients must be empty")
    if problems:
        module.fail_json(msg="; ".join(problems))

    try:
        result = apply(
            p["path"], render(**routing) if p["state"] == "present" else None,
            binary=p["nginx_binary"], config=p["nginx_config"], prefix=p["nginx_prefix"], pid_file=p["pid_file"],
            validate=p["validate"], reload=p["reload"], wait_workers=p["wait_workers"],
            worker_timeout=p["worker_timeout"], on_timeout=p["on_timeout"],
            servers=[server["address"] for upstream in p["upstreams"] for server in upstream["servers"]],
            check_mode=module.check_mode,
        )
    except NginxApplyError as exc:
        module.fail_json(msg=str(exc), **_for_module(module, exc.result))
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (p["path"], exc))
    module.exit_json(**_for_module(module, result))


def _for_module(module, result):
    for warning in result.get("warnings", []):
        module.warn(warning)
    return {key: value for key, value in result.items()
            if key != "warnings" and (key != "diff" or module._diff)}


if __name__ == "__main__":
    main()
