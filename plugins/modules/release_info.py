#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: Read a host's releases, live link, release state and accounts in one call
version_added: 0.1.0
description:
  - Reads, in one round trip instead of a dozen C(stat), C(slurp) and C(getent) tasks, what the
    C(fleet.rollout.release) role decides from before it changes a host. That is the slot's C(current) link,
    the release state file, every installed release with the sha256 its marker records, chosen paths,
    chosen files and whether the service account exists.
  - Useful on its own to see what is installed and live on a host, for example before choosing a release
    to roll back to.
  - Changes nothing.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Reads the same in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
options:
  current:
    description:
      - The slot's C(current) link, for example V(/opt/shop/current).
    type: path
    required: true
  state_file:
    description:
      - The release state file the role keeps, for example V(/opt/shop/release-state.json). A missing file
        reads as V({}); a file that is not a JSON object fails the task.
    type: path
    required: true
  releases_dir:
    description:
      - The directory holding one directory per installed release, for example V(/opt/shop/releases).
    type: path
    required: true
  marker:
    description:
      - Name of the file in each release directory that records the sha256 of the artifact it came from.
    type: str
    default: .release-sha256
  shared_dirs:
    description:
      - Names of shared directories linked into each release; RV(releases) says where each link points.
    type: list
    elements: str
    default: []
  paths:
    description:
      - Paths to describe (kind, mode, owner, group, link target) in RV(paths).
    type: list
    elements: path
    default: []
  files:
    description:
      - Files whose content to return, base64-encoded, in RV(files). Use C(no_log) on the task when they
        hold secrets.
    type: list
    elements: path
    default: []
  user:
    description:
      - A user name whose existence RV(user_exists) reports.
    type: str
  group:
    description:
      - A group name whose existence RV(group_exists) reports.
    type: str
notes:
  - The module never changes anything; it always reports C(changed=false).
seealso:
  - module: ansible.builtin.stat
  - module: ansible.builtin.slurp
"""

EXAMPLES = r"""
- name: What is installed and live for the shop service
  fleet.rollout.release_info:
    current: /opt/shop/current
    state_file: /opt/shop/release-state.json
    releases_dir: /opt/shop/releases
  register: shop

- name: Show the installed releases, newest first
  ansible.builtin.debug:
    msg: >-
      live: {{ shop.state.slots.main.version | default('none') }};
      installed: {{ shop.releases | dict2items | selectattr('value.mtime') | sort(attribute='value.mtime', reverse=true)
                    | map(attribute='key') | join(', ') }}
"""

RETURN = r"""
current:
  description: The C(current) link.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether something is there (a dangling link counts).
      type: bool
    islnk:
      description: Whether it is a symbolic link.
      type: bool
    lnk_target:
      description: What the link points to, as written in it; null when it is not a link.
      type: str
    lnk_source:
      description: The path the link resolves to; null when it is not a link.
      type: str
  sample: {"exists": true, "islnk": true, "lnk_target": "/opt/shop/releases/1.0.0", "lnk_source": "/opt/shop/releases/1.0.0"}
state:
  description: The release state file's content; empty when there is none.
  returned: always
  type: dict
  sample: {"service": "shop", "slots": {"main": {"version": "1.0.0", "previous": null}}}
releases:
  description:
    - One entry per name in O(releases_dir) - the sha256 its marker records (null without a marker), the
      marker's modification time (when the release was installed) and, per name in O(shared_dirs), the
      target of that link in the release (null when it is not a link).
  returned: always
  type: dict
  sample: {"1.0.0": {"sha256": "eb9d59d3...", "mtime": 1764690000.1, "links": {"data": "/opt/shop/shared/data"}}}
paths:
  description: Per path in O(paths) - exists, isdir, islnk, lnk_target, mode (octal string), owner, group.
  returned: always
  type: dict
  sample: {"/opt/shop": {"exists": true, "isdir": true, "islnk": false, "lnk_target": null, "mode": "0755",
           "owner": "root", "group": "root"}}
files:
  description: Per path in O(files), its content base64-encoded (as M(ansible.builtin.slurp) returns it); null when missing.
  returned: always
  type: dict
  sample: {"/etc/systemd/system/shop.service": "W1VuaXRdCg=="}
user_exists:
  description: Whether O(user) exists; null without O(user).
  returned: always
  type: bool
  sample: true
group_exists:
  description: Whether O(group) exists; null without O(group).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._release_info import ReleaseInfoError, release_info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            current=dict(type="path", required=True),
            state_file=dict(type="path", required=True),
            releases_dir=dict(type="path", required=True),
            marker=dict(type="str", default=".release-sha256"),
            shared_dirs=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="path", default=[]),
            files=dict(type="list", elements="path", default=[]),
            user=dict(type="str"),
            group=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if "/" in p["marker"] or p["marker"] in ("", ".", ".."):
        module.fail_json(msg="marker must be a file name, got %r" % p["marker"])
    try:
        result = release_info(p["current"], p["state_file"], p["releases_dir"], p["marker"], p["shared_dirs"],
                              p["paths"], p["files"], p["user"], p["group"])
    except (ReleaseInfoError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
