# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import every filter file of the collection into the running process, and return the input unchanged.

ansible-core forks a worker process per host and task. A worker's first use of one of this collection's
filters imports, in name order, every filter file up to the one that defines it, each compiled from source
(the collection loader keeps no bytecode): 40-90 ms of CPU per host and task on a loaded 2-core controller,
175 times in a 4-host ramped rollout. Templated once in the controller's main process (a play's ``hosts``,
see playbooks/preflight.yml), the files are imported there, and every worker forked after inherits them."""

from __future__ import annotations

import importlib
import pkgutil


def _filter_modules() -> list[str]:
    package = importlib.import_module(__name__.rpartition(".")[0])
    return [name for _finder, name, ispkg in pkgutil.iter_modules(package.__path__, prefix=package.__name__ + ".")
            if not ispkg]


def preload_filters(value):
    """``value``, once every filter file of the collection is imported."""
    for name in _filter_modules():
        importlib.import_module(name)
    return value


class FilterModule:
    def filters(self):
        return {"preload_filters": preload_filters}
