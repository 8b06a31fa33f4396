# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  socket:
    description:
      - The HAProxy runtime API socket, as configured by C(stats socket ... level admin) in the
        C(global) section.
      - An absolute unix socket path, or C(tcp://host:port) for a TCP listener.
      - A TCP listener gives admin rights to anyone who can reach it; keep it on loopback.
    type: str
    default: /run/haproxy/admin.sock
  timeout:
    description:
      - Seconds to wait for HAProxy to answer one command.
    type: float
    default: 10
requirements:
  - HAProxy 2.4 or later with an admin-level runtime API socket.
  - Only the Python standard library on the managed node.
"""
