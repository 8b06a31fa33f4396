#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_unpack
short_description: Install a release tarball as a release directory, whole or not at all
version_added: 0.3.0
description:
  - Unpacks a release tarball (any compression GNU tar reads) into C(<releases>/.incoming-<version>), links the
    release's shared directories into it, writes the sha256 marker and renames it to O(dest) - in one round trip.
    A release directory is therefore complete or absent; an interrupted install leaves only the C(.incoming-)
    directory, which the next install removes first.
  - Does nothing to O(dest) when it exists (a release is never overwritten); the artifact is still removed when
    O(remove_artifact).
  - Checks the artifact's sha256 against O(sha256) before unpacking anything; on a mismatch it deletes the
    artifact, fails naming both sums and changes nothing else. The module records O(sha256) in the marker file
    that M(fleet.rollout.release_info) reads.
  - The install step of the C(fleet.rollout.release) role; use the role rather than this module unless you build
    your own steps.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Reports whether the release would be installed and the artifact removed; changes nothing.
  diff_mode:
    support: full
    description: Shows O(dest) absent before and installed after.
options:
  dest:
    description: The release directory to create, C(<releases>/<version>).
    type: path
    required: true
  artifact:
    description: The tarball on the host.
    type: path
    required: true
  sha256:
    description:
      - The artifact's sha256 (64 lowercase hex digits). The artifact must have it (checked before unpacking); it
        is written to the O(marker) file in the release.
    type: str
    required: true
  marker:
    description: Name of the file in the release that holds O(sha256).
    type: str
    default: .release-sha256
  shared_links:
    description:
      - "Directory names in the release to replace with a link to an absolute path (the release's shared
        directories), e.g. C({data: /opt/shop/shared/data}). What the tarball has at that name is removed."
    type: dict
    default: {}
  strip_components:
    description: Leading path components to strip from the tarball's members.
    type: int
    default: 0
  remove_artifact:
    description: Remove O(artifact) once the release is in place (or was there already).
    type: bool
    default: true
notes:
  - Runs on the host with Python's standard library and GNU C(tar).
  - Files are owned by the user the module runs as (root with C(become)), whatever the tarball says.
seealso:
  - module: ansible.builtin.unarchive
  - module: fleet.rollout.release_activate
  - module: fleet.rollout.release_info
"""

EXAMPLES = r"""
- name: Install shop 2.0.0 from its uploaded tarball (refused, and the tarball deleted, if its sha256 differs)
  fleet.rollout.release_unpack:
    dest: /opt/shop/releases/2.0.0
    artifact: /opt/shop/artifacts/2.0.0-shop-2.0.0.tar.gz
    sha256: 9f2c3a0d4c1f0b8e6a5d7c3b2a1908f7e6d5c4b3a2918070f6e5d4c3b2a19080
    shared_links:
      data: /opt/shop/shared/data
    strip_components: 1
"""

RETURN = r"""
path:
  description: The release directory (O(dest)).
  returned: always
  type: str
installed:
  description: Whether this run installed the release (false when O(dest) was there).
  returned: always
  type: bool
artifact_removed:
  description: Whether this run removed the artifact.
  returned: always
  type: bool
files:
  description: Entries (files, directories, links) in the installed release; 0 when not installed by this run.
  returned: always
  type: int
links:
  description: The shared directory links, name to target.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.rollout.plugins.module_utils._release_unpack import UnpackError, unpack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            artifact=dict(type="path", required=True),
            sha256=dict(type="str", required=True),
            marker=dict(type="str", default=".release-sha256"),
            shared_links=dict(type="dict", default={}),
            strip_components=dict(type="int", default=0),
            remove_artifact=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tar = module.get_bin_path("tar", required=not module.check_mode) or "tar"
    try:
        result = unpack(p["dest"], p["artifact"], p["sha256"], module.run_command, tar=tar, marker=p["marker"],
                        shared_links=p["shared_links"], strip_components=p["strip_components"],
                        remove_artifact=p["remove_artifact"], check_mode=module.check_mode)
    except (ValueError, UnpackError) as error:
        module.fail_json(msg=str(error))
    if module._diff and result["installed"]:
        result["diff"] = {"before": {"path": p["dest"], "state": "absent"},
                          "after": {"path": p["dest"], "state": "installed", "sha256": p["sha256"]}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
