# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  nginx_binary:
    description:
      - The nginx executable, as a name looked up in C(PATH) and the C(sbin) directories, or an absolute path.
      - Runs as C(nginx -t) to validate and C(nginx -s reload) to reload, always with O(nginx_config) (and
        O(nginx_prefix) when set), never through a shell.
    type: str
    default: nginx
  nginx_config:
    description:
      - The main configuration file, passed with C(-c). It must include the files the module writes from
        its C(http) context.
    type: path
    default: /etc/nginx/nginx.conf
  nginx_prefix:
    description:
      - The prefix path passed with C(-p); relative paths in the configuration resolve against it.
      - Leave unset to use the prefix nginx was built with.
    type: path
  pid_file:
    description:
      - The file where the running nginx master writes its process ID (the C(pid) directive).
      - When it names no running nginx master, nginx counts as not running.
    type: path
    default: /run/nginx.pid
requirements:
  - nginx 1.18 or later (open source is enough), run by the same user as the module, usually root.
  - Linux C(/proc), to follow nginx's worker processes across a reload.
  - Only the Python standard library on the managed node.
"""
