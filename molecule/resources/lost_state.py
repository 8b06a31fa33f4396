"""An LB role re-run over a rollout state that is lost, or names another pool than the LB's routing,
on the lb_haproxy and lb_nginx scenarios' service (pools blue = 1.0.0, green = 2.0.0).

The service is flipped to green (fleet.rollout.rollback), its state removed from both LB hosts and
the LB role run again: the state must start on green, where users are, not on the first pool. Then
the state is set to blue under a routing to green: the role must refuse, naming both, and leave the
routing alone. At the end the scenario is back on blue.
"""

from __future__ import annotations

import re

from labtest import haproxy_cli, http, lab_hosts, load_json
from rollout_run import Service, docker, playbook

LBS = lab_hosts("lb")
CLIENT = lab_hosts("client")[0]
STATE = "/var/lib/fleet-rollout/%s/state.json"
VERSIONS = {"blue": "1.0.0", "green": "2.0.0"}
# Run on an LB host: the state file's active pool set to argv[2], as a stale or hand-edited state.
SET_POOL = "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['active_pool']=sys.argv[2]; json.dump(d, open(p,'w'))"


def run(service: Service, name: str, **extra):
    return playbook(name, dict(service.extra_vars, **extra), "-e", "@molecule/resources/services.vars.yml")


def routed(service: Service, host_for) -> dict[str, str]:
    """Per LB host, the pool its running routing sends users to."""
    found = {}
    for lb in LBS:
        if service.lb == "haproxy":
            text = haproxy_cli(host_for(lb), "show map /etc/haproxy/maps/%s.map" % service.name)
            match = re.search(r"\sactive be_%s_(\w+)" % service.name, text)
        else:
            text = host_for(lb).file("/etc/nginx/fleet/%s.routing.conf" % service.name).content_string
            match = re.search(r"default fleet_%s_(\w+);" % service.name, text)
        found[lb] = match.group(1) if match else None
    return found


def served(service: Service, host_for) -> dict[str, str]:
    """Per LB host, the version a user gets through it."""
    client = host_for(CLIENT)
    return {lb: http(client, "http://%s:%d/" % (lb, service.port))[1].get("x-app-version") for lb in LBS}


def states(service: Service, host_for) -> dict[str, str]:
    return {lb: load_json(host_for(lb), STATE % service.name)["active_pool"] for lb in LBS}


def lost_state_case(service: Service, host_for) -> dict:
    seen = {"flip": run(service, "fleet.rollout.rollback")}
    try:
        seen["flipped"] = routed(service, host_for)
        for lb in LBS:
            docker("exec", lb, "rm", "-f", STATE % service.name)
        seen["adopt"] = run(service, "molecule/resources/lb_role.yml")
        seen["adopted"] = states(service, host_for), routed(service, host_for), served(service, host_for)
        for lb in LBS:
            docker("exec", lb, "python3", "-c", SET_POOL, STATE % service.name, "blue")
        seen["refused"] = run(service, "molecule/resources/lb_role.yml")
        seen["after_refused"] = states(service, host_for), routed(service, host_for), served(service, host_for)
    finally:
        # Back to where the scenario was, whatever failed above: the state started from the routing
        # again, then a flip back to blue.
        for lb in LBS:
            docker("exec", lb, "rm", "-f", STATE % service.name)
        seen["restore"] = run(service, "molecule/resources/lb_role.yml")
        if "green" in routed(service, host_for).values():
            seen["back"] = run(service, "fleet.rollout.rollback", rollback_pool="blue")
    seen["at_end"] = states(service, host_for), routed(service, host_for), served(service, host_for)
    return seen


def everywhere(value) -> dict:
    return {lb: value for lb in LBS}


def check_lost_state_case(seen: dict, service: Service, routing_file: str) -> None:
    """The asserts both LB scenarios make on lost_state_case's observations."""
    assert seen["flip"].returncode == 0, seen["flip"].stdout[-3000:]
    assert seen["flipped"] == everywhere("green")
    # A lost state starts where users are: green, not the service's first pool (blue).
    assert seen["adopt"].returncode == 0, seen["adopt"].stdout[-3000:]
    assert seen["adopted"] == (everywhere("green"), everywhere("green"), everywhere(VERSIONS["green"]))
    assert "%s: no rollout state on %s; started one on pool green, where its routing (%s) sends users" % (
        service.name, LBS[0], routing_file % service.name) in re.sub(r"\s+", " ", seen["adopt"].stdout)
    # A state naming another pool is refused, both named, and the routing is left alone.
    assert seen["refused"].returncode != 0
    message = re.sub(r"\s+", " ", seen["refused"].stdout)
    assert "the routing of %s (%s) sends users to green, its rollout state (/var/lib/fleet-rollout/%s/state.json) " \
           "says blue" % (service.name, routing_file % service.name, service.name) in message, message[-3000:]
    assert seen["after_refused"] == (everywhere("blue"), everywhere("green"), everywhere(VERSIONS["green"]))
    assert seen["restore"].returncode == 0, seen["restore"].stdout[-3000:]
    assert "back" in seen and seen["back"].returncode == 0, seen.get("back") and seen["back"].stdout[-3000:]
    assert seen["at_end"] == (everywhere("blue"), everywhere("blue"), everywhere(VERSIONS["blue"]))


# Run on an LB host: a live rollout lock of service argv[1] in state dir argv[2], held for 10 minutes.
HOLD_LOCK = ("import json,os,sys,time; d=os.path.join(sys.argv[2], sys.argv[1]); os.makedirs(d, exist_ok=True); "
             "t=time.time(); json.dump({'owner': 'ops@ctl [run lockcase]', 'started': t, 'expires': t + 600, "
             "'info': {'strategy': 'ramped', 'version': '2.0.0'}}, open(os.path.join(d, 'lock.json'), 'w'))")


def check_rollout_lock_case(service: Service, host_for, routing_file: str) -> None:
    """An LB role run while a rollout of the service holds its lock (on every LB, as a rollout takes it):
    refused on each LB before anything changes (the routing it writes from the state would undo the rollout's
    drains and weights), naming the rollout; with lb_ignore_rollout_lock it runs."""
    before = {lb: host_for(lb).file(routing_file % service.name).content_string for lb in LBS}
    for lb in LBS:
        docker("exec", lb, "python3", "-c", HOLD_LOCK, service.name, "/var/lib/fleet-rollout")
    try:
        refused = run(service, "molecule/resources/lb_role.yml")
        assert refused.returncode != 0
        said = " ".join(refused.stdout.split())
        for lb in LBS:
            assert "Not configuring %s: a rollout of %s runs (ramped 2.0.0 by ops@ctl [run lockcase], lock until" % (
                lb, service.name) in said, refused.stdout[-3000:]
        assert "lb_ignore_rollout_lock=true" in said
        # Refused first: no task that changes something ran on any LB.
        for lb in LBS:
            assert re.search(r"%s : ok=\d+ changed=0 " % re.escape(lb), said), refused.stdout[-2000:]
        assert {lb: host_for(lb).file(routing_file % service.name).content_string for lb in LBS} == before
        forced = run(service, "molecule/resources/lb_role.yml", lb_ignore_rollout_lock=True)
        assert forced.returncode == 0, forced.stdout[-3000:]
    finally:
        for lb in LBS:
            docker("exec", lb, "rm", "-f", "/var/lib/fleet-rollout/%s/lock.json" % service.name)
    assert {lb: host_for(lb).file(routing_file % service.name).content_string for lb in LBS} == before
