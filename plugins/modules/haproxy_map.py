#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_map
short_description: Set the entries of an HAProxy map atomically, live and on disk
version_added: 0.1.0
description:
  - Makes an HAProxy map hold exactly the given entries, in the running process and in its file.
  - The running map is replaced atomically with C(prepare map), one C(add map @version) payload and
    C(commit map @version), so every request is routed by the old map or by the new one, never by a
    half-written one. This is the pool switch for blue/green (C(use_backend %[str(svc),map(...)])) and
    the split table for canary and A/B routing.
  - After the commit the running map is read back; the module fails, naming the map and both entry lists,
    unless it holds the entries. A caller may act on its success alone (stop the old pool, start a watch).
  - The map file is rewritten with the same content by an atomic rename, so a reload keeps it; HAProxy
    never writes runtime map edits back to the file.
  - No reload is needed or done.
author:
  - fleet.rollout maintainers (@fleet-rollout)
extends_documentation_fragment:
  - fleet.rollout.haproxy_runtime
attributes:
  check_mode:
    support: full
    description: Compares the running map and the file with the wanted entries; changes neither.
  diff_mode:
    support: full
    description: Shows the map file before and after.
options:
  map:
    description:
      - Path of the map file, exactly as the HAProxy config references it (the runtime API names maps by it).
    type: path
    required: true
  entries:
    description:
      - The complete content of the map, in order (for ranges such as V(0:9) and patterns the first match wins).
      - A list of C(key)/C(value) dicts, or a dict (kept in the order written).
      - Keys are single words; values one line. An empty list empties the map.
    type: raw
    required: true
  runtime:
    description:
      - Update the running HAProxy through the runtime API. Turn off to only write the file, for
        example before HAProxy is first started.
    type: bool
    default: true
  write_file:
    description:
      - Write the entries to the map file too, so they survive a reload.
    type: bool
    default: true
notes:
  - The map must be referenced by the running configuration, otherwise HAProxy does not know it and
    the task fails before changing anything.
seealso:
  - module: fleet.rollout.haproxy_server
"""

EXAMPLES = r"""
- name: Flip the shop from blue to green on every LB, without a reload
  fleet.rollout.haproxy_map:
    map: /etc/haproxy/maps/pools.map
    entries:
      shop: be_shop_green
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'] }}"

- name: Send 10 % of requests to the canary pool (rand(100) matched as int ranges)
  fleet.rollout.haproxy_map:
    map: /etc/haproxy/maps/shop-split.map
    entries:
      - {key: "0:9", value: be_shop_canary}
      - {key: "10:99", value: be_shop_stable}
"""

RETURN = r"""
runtime_changed:
  description: Whether the running map was replaced.
  returned: always
  type: bool
file_changed:
  description: Whether the map file was rewritten.
  returned: always
  type: bool
entries:
  description: The map's entries after the task, in order.
  returned: always
  type: list
  elements: dict
  sample: [{key: shop, value: be_shop_green}]
previous_entries:
  description: The running map's entries before the task (the file's when O(runtime=false)).
  returned: always
  type: list
  elements: dict
  sample: [{key: shop, value: be_shop_blue}]
applied_at:
  description:
    - When the running map switched to the new entries (epoch seconds, the LB host's clock; the time the
      C(commit map) was sent). A request HAProxy parses after it is routed by the new entries.
    - V(null) when the running map did not change.
  returned: always
  type: float
  sample: 1795792312.418
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_map import MapEntryError, converge, normalize_entries
from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyRuntimeError, RuntimeClient


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default="/run/haproxy/admin.sock"),
            timeout=dict(type="float", default=10.0),
            map=dict(type="path", required=True),
            entries=dict(type="raw", required=True),
            runtime=dict(type="bool", default=True),
            write_file=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not isinstance(p["entries"], (dict, list)):
        module.fail_json(msg="entries: expected a dict or a list of {key, value}, got %s" % type(p["entries"]).__name__)
    try:
        normalize_entries(p["entries"])
    except MapEntryError as exc:
        module.fail_json(msg="entries: %s" % exc)
    if not os.path.isabs(p["map"]):
        module.fail_json(msg="map: expected the absolute path the HAProxy config uses, got %s" % p["map"])
    if p["write_file"] and not os.path.isdir(os.path.dirname(p["map"])):
        module.fail_json(msg="map: directory %s does not exist" % os.path.dirname(p["map"]))
    if not (p["runtime"] or p["write_file"]):
        module.fail_json(msg="runtime and write_file are both false: nothing to do")

    try:
        client = RuntimeClient(p["socket"], p["timeout"])
        if p["runtime"]:
            client.check()
        result = converge(client, p["map"], p["entries"], runtime=p["runtime"], write_file=p["write_file"],
                          check_mode=module.check_mode)
    except (HAProxyRuntimeError, OSError) as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
