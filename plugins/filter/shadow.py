# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A shadow run's input checked."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.filter.ab import _percent
from ansible_collections.fleet.rollout.plugins.filter.services import preview_pool

# The methods the shadow relay forwards.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
THEN = ("none", "blue_green", "ramped")


def _seconds(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def shadow_writes(methods) -> list[str]:
    """The methods of ``methods`` that write (all but GET, HEAD and OPTIONS), upper case."""
    return [method.upper() for method in methods or [] if isinstance(method, str) and method.upper() not in SAFE_METHODS]


def _points_elsewhere(environment, release_environment) -> bool:
    """Whether the shadow's environment gives some variable the release's environment sets another value: the
    one way the role can see that the shadow's writes go somewhere else (a variable only added, such as a log
    level, changes nothing about where the app writes)."""
    if not isinstance(environment, dict) or not isinstance(release_environment, dict):
        return False
    return any(name in release_environment and str(value) != str(release_environment[name])
               for name, value in environment.items())


def shadow_problems(pool: str, service: dict, active: str, duration=120, sample=100, methods=None, environment=None,
                    then="none", port=19000, release_environment=None, writes_isolated=False) -> list[str]:
    """Every way a shadow run's input is wrong, each naming its variable; empty when it can run.

    ``pool`` is the shadow pool, ``active`` the pool that serves the users; the others default as the role does.
    Mirrored writes need ``environment`` (shadow_release_environment) to point a variable of
    ``release_environment`` elsewhere, unless ``writes_isolated`` says the shadow hosts' store is their own."""
    problems = []
    methods = ["GET", "HEAD"] if methods is None else methods
    pools = {entry["name"]: entry for entry in service.get("pools", [])}
    if pool not in pools:
        problems.append("shadow_pool: %s is not a pool of %s (its pools: %s)" % (pool, service.get("name"), ", ".join(pools)))
    elif pool == active:
        problems.append("shadow_pool: %s is the active pool, which serves the users: shadow a release on a pool that"
                        " serves none" % pool)
    elif "slot" in pools[pool]:
        problems.append("shadow_pool: %s shares its hosts with the active pool (the slots layout): shadow needs a pool"
                        " on its own hosts" % pool)
    if not _seconds(duration):
        problems.append("shadow_duration: expected seconds above 0, got %r" % (duration,))
    if _percent(sample) is None:
        problems.append("shadow_sample_percent: expected a percent above 0, at most 100, in steps of 0.01, got %r"
                        % (sample,))
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) and m.upper() in METHODS
                                                               for m in methods):
        problems.append("shadow_methods: expected a non-empty list of %s, got %r" % (", ".join(METHODS), methods))
    elif shadow_writes(methods) and writes_isolated is not True:
        if not environment:
            problems.append("shadow_methods: %s write; mirrored writes reach the shadow's data store, so give the shadow"
                            " hosts their own with shadow_release_environment (for example a scratch database)"
                            % ", ".join(shadow_writes(methods)))
        elif not _points_elsewhere(environment, release_environment):
            problems.append("shadow_release_environment: %s write, and %s changes no variable of release_environment, so"
                            " the mirrored writes would still reach the store the users' release writes to; set the"
                            " variable that names it (for example DATABASE_URL) to the shadow's own store, or set"
                            " shadow_writes_isolated=true if the shadow hosts have their own store by other means"
                            % (", ".join(shadow_writes(methods)),
                               sorted(environment) if isinstance(environment, dict) else environment))
    if then not in THEN:
        problems.append("shadow_then: expected none, blue_green or ramped, got %r" % (then,))
    elif then == "blue_green" and pool in pools and active in pools and pool != preview_pool(service, active):
        problems.append("shadow_then: blue_green flips to the idle pool, %s, not shadow_pool %s"
                        % (preview_pool(service, active), pool))
    try:
        port_ok = 1024 <= int(port) <= 65535
    except (TypeError, ValueError):
        port_ok = False
    if not port_ok:
        problems.append("shadow_relay_port: expected a port 1024-65535, got %r" % (port,))
    return problems


class FilterModule:
    def filters(self):
        return {"shadow_problems": shadow_problems, "shadow_writes": shadow_writes}
