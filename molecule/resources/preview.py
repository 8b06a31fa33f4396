"""The preview route of the lb_haproxy and lb_nginx scenarios' service (pools blue = 1.0.0 active,
green = 2.0.0): closed unless a route step opens it, kept by a re-run of the LB role, closed again by the
next route step that does not ask for it."""

from __future__ import annotations

from labtest import http, lab_hosts, load_json
from rollout_run import Service, playbook

LBS = lab_hosts("lb")
CLIENT = lab_hosts("client")[0]
BLUE = lab_hosts("blue")
PREVIEW = {"X-Rollout-Preview": "1"}


def run(service: Service, name: str, **extra):
    result = playbook(name, dict(service.extra_vars, **extra), "-e", "@molecule/resources/services.vars.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    return result


def previewed(service: Service, host_for) -> dict[str, set]:
    """Per LB host, the versions 8 preview requests from the lab's client (a trusted network) got."""
    client = host_for(CLIENT)
    return {lb: {http(client, "http://%s:%d/" % (lb, service.port), PREVIEW)[1].get("x-app-version") for _n in range(8)}
            for lb in LBS}


def recorded(service: Service, host_for) -> dict[str, bool]:
    return {lb: load_json(host_for(lb), "/var/lib/fleet-rollout/%s/state.json" % service.name).get("preview", False)
            for lb in LBS}


def check_preview_case(service: Service, host_for) -> None:
    closed = {lb: {"1.0.0"} for lb in LBS}
    opened = {lb: {"2.0.0"} for lb in LBS}
    assert previewed(service, host_for) == closed
    run(service, "molecule/resources/lb_route.yml", lb_route="blue", lb_preview=True)
    try:
        assert previewed(service, host_for) == opened
        assert recorded(service, host_for) == {lb: True for lb in LBS}
        run(service, "molecule/resources/lb_role.yml")
        assert previewed(service, host_for) == opened, "a re-run of the LB role closed the preview route"
        # A step that is not a route step (a canary's weights): nginx rewrites the routing and closes the
        # preview route, HAProxy leaves its map alone; either way a re-run of the LB role keeps what it left,
        # though only route steps record the preview in the rollout state. (What tells the fix on nginx,
        # whose role renders the routing again; HAProxy's role never rewrites an existing map.)
        run(service, "molecule/resources/lb_route.yml", lb_step="servers_weigh", lb_route="blue",
            lb_weights={BLUE[0]: 100})
        left = previewed(service, host_for)
        assert left == (closed if service.lb == "nginx" else opened), left
        run(service, "molecule/resources/lb_role.yml")
        assert previewed(service, host_for) == left, "a re-run of the LB role changed the preview route"
    finally:
        run(service, "molecule/resources/lb_route.yml", lb_route="blue")
    assert previewed(service, host_for) == closed
    assert recorded(service, host_for) == {lb: False for lb in LBS}
