# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the input every strategy shares, run before anything changes."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.filter.release_input import SAFE_NAME as SAFE_VERSION, float_version_problem
from ansible_collections.fleet.rollout.plugins.filter.services import pool_servers, service_problems


def rollout_service(services, name=None):
    """The service called ``name`` in ``services``, or the only service when ``name`` is empty."""
    if not name and isinstance(services, list) and len(services) == 1:
        return services[0]
    for service in services or []:
        if isinstance(service, dict) and service.get("name") == name:
            return service
    return None


def rollout_input_problems(version, services, service_name, lb_group, hosts, groups, hostvars) -> list[str]:
    """Every problem with a strategy's shared input, as messages naming the variable."""
    problems = []
    if version is None or str(version) == "":
        problems.append("rollout_version: required, the release to roll out (such as 2.0.0)")
    elif isinstance(version, float):
        problems.append(float_version_problem("rollout_version", version))
    elif not SAFE_VERSION.match(str(version)) or len(str(version)) > 128:
        problems.append("rollout_version: expected a safe name (letters, digits, '.', '_', '-'; not starting with "
                        "'.' or '-'; no '/'), got %r" % (version,))
    service_errors = service_problems(services, groups)
    problems.extend(service_errors)
    if service_errors:
        return problems
    service = rollout_service(services, service_name)
    if service is None:
        names = [s.get("name") for s in services]
        if service_name:
            problems.append("rollout_service: %r is not one of rollout_services %s" % (service_name, names))
        else:
            problems.append("rollout_service: required when rollout_services has more than one service %s" % names)
    if not isinstance(lb_group, str) or lb_group not in groups:
        problems.append("rollout_lb_group: %r is not a group of the inventory" % (lb_group,))
    elif not groups[lb_group]:
        problems.append("rollout_lb_group: group %r has no hosts" % lb_group)
    if service is not None:
        members = {server["name"] for pool in service["pools"] for server in pool_servers(pool, groups, hostvars)}
        strangers = sorted(set(hosts) - members)
        if strangers:
            problems.append("the play's hosts %s are not servers of service %r (its pools use groups %s): target the "
                            "app group of the service" % (strangers, service["name"],
                                                          [pool["group"] for pool in service["pools"]]))
    return problems


class FilterModule:
    def filters(self):
        return {"rollout_input_problems": rollout_input_problems, "rollout_service": rollout_service}
