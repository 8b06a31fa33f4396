#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lb_servers_info
short_description: Read the state and weight of a service's servers on one HAProxy or nginx LB
version_added: 0.1.0
description:
  - Reads, without changing anything, every server of a service's pools on the LB host it runs on, as the LB
    routes by it now - its pool, admin state, health status, whether it takes new traffic, and its weight.
  - With O(lb=haproxy) the answer comes from the runtime API (the admin socket), so drains and weights set at
    runtime show. The service's backends are C(be_<service>_<pool>) and, for a sticky canary,
    C(be_<service>_<pool>_canary), as the fleet.rollout.haproxy role names them.
  - With O(lb=nginx) it reads the routing include file the fleet.rollout.nginx role writes (upstreams
    C(fleet_<service>_<pool>)); open-source nginx has no runtime API, and that file is what its workers route
    by after the graceful reload that follows every change. Servers are named by address there.
  - Used by the fleet.rollout.status playbook.
author:
  - fleet.rollout maintainers (@fleet-rollout)
extends_documentation_fragment:
  - fleet.rollout.attributes.READ_ONLY
options:
  lb:
    description: The LB type the service runs on.
    type: str
    required: true
    choices: [haproxy, nginx]
  service:
    description: The service name, as in C(rollout_services).
    type: str
    required: true
  socket:
    description: With O(lb=haproxy), the admin socket (a path, or V(ipv4@host:port)).
    type: str
    default: /run/haproxy/admin.sock
  timeout:
    description: With O(lb=haproxy), seconds to wait for an answer on the socket.
    type: float
    default: 10.0
  routing_dir:
    description: With O(lb=nginx), the directory of the routing files (C(<service>.routing.conf)).
    type: path
    default: /etc/nginx/fleet
"""

EXAMPLES = r"""
- name: Where the shop's servers stand on each LB
  fleet.rollout.lb_servers_info:
    lb: haproxy
    service: shop
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'] }}"
  register: shop_servers

- name: Servers of the shop that take no new traffic on the first LB
  ansible.builtin.debug:
    msg: "{{ shop_servers.results[0].servers | rejectattr('in_rotation') | map(attribute='server') | list }}"
"""

RETURN = r"""
servers:
  description:
    - One entry per server of the service's pools, sorted by pool.
    - C(server) is the HAProxy server name (the inventory hostname), null on nginx; C(address) is the
      nginx C(host:port), null on HAProxy.
    - C(side) is V(main), or V(canary) for the sticky-canary twin of a pool.
    - C(admin_state) is V(ready), V(drain) or V(maint) (an nginx server marked C(down) reads V(maint)).
    - C(status) is HAProxy's (V(UP), V(DOWN), V(MAINT), V(DRAIN), V(no check), ...), or on nginx V(UP),
      V(DOWN) (marked down) or V(BACKUP).
    - C(in_rotation) says whether it gets new requests; C(weight) is its weight now (0 when marked down on
      nginx), C(initial_weight) the configured one (HAProxy only), C(sessions) its open sessions (HAProxy only).
  returned: success
  type: list
  elements: dict
  sample:
    - {pool: blue, side: main, server: app1, address: null, admin_state: ready, status: UP, in_rotation: true,
       weight: 100, initial_weight: 100, sessions: 2}
changed_at:
  description: With O(lb=nginx), when the routing file last changed (epoch seconds); null with HAProxy.
  returned: success
  type: float
  sample: 1796259426.44
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyRuntimeError, RuntimeClient
from ansible_collections.fleet.rollout.plugins.module_utils._lb_servers import (
    LBServersError,
    haproxy_servers,
    nginx_servers,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lb=dict(type="str", required=True, choices=["haproxy", "nginx"]),
            service=dict(type="str", required=True),
            socket=dict(type="str", default="/run/haproxy/admin.sock"),
            timeout=dict(type="float", default=10.0),
            routing_dir=dict(type="path", default="/etc/nginx/fleet"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["service"].strip() or "/" in p["service"]:
        module.fail_json(msg="service: expected a service name, got %r" % p["service"])
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be above 0, got %s" % p["timeout"])
    try:
        if p["lb"] == "haproxy":
            client = RuntimeClient(p["socket"], p["timeout"])
            client.check()
            servers, changed_at = haproxy_servers(client, p["service"]), None
        else:
            path = os.path.join(p["routing_dir"], "%s.routing.conf" % p["service"])
            servers, changed_at = nginx_servers(path, p["service"])
    except (HAProxyRuntimeError, LBServersError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, servers=servers, changed_at=changed_at)


if __name__ == "__main__":
    main()
