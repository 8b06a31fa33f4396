"""live_pool / live_pools / live_previews: the pool an LB's own routing sends users to, and whether its
preview route is open, read from what the collection writes (HAProxy's pool map, nginx's routing file rendered by nginx_routing and nginx_upstream)."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.live_pool import live_pool, live_pools, live_previews
from ansible_collections.fleet.rollout.plugins.filter.nginx_routing import nginx_routing
from ansible_collections.fleet.rollout.plugins.module_utils import _haproxy_map, _nginx_upstream

SERVICE = {"name": "shop-eu", "port": 80, "pools": [
    {"name": "blue", "group": "blue", "port": 8080}, {"name": "green", "group": "green", "port": 8080}]}
GROUPS = {"blue": ["app1", "app2"], "green": ["app3", "app4"]}
HOSTVARS = {host: {} for hosts in GROUPS.values() for host in hosts}


def nginx_text(active: str, **kwargs) -> str:
    return _nginx_upstream.render(**nginx_routing(SERVICE, GROUPS, HOSTVARS, active, **kwargs))


@pytest.mark.parametrize("active", ["blue", "green", "maintenance"])
def test_haproxy_pool_map_names_its_active_pool(active):
    text = _haproxy_map.render([("active", "be_shop-eu_%s" % active), ("preview", "be_shop-eu_blue"),
                                ("sticky.canary", "be_shop-eu_green_canary")])
    assert live_pool(text, "shop-eu", "haproxy") == active


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.parametrize("active", ["blue", "green", "maintenance"])
def test_nginx_routing_names_its_active_pool(active, preview):
    text = nginx_text(active, preview=preview)
    assert live_pool(text, "shop-eu", "nginx") == active
    # The preview route: the other pool's upstream under the header's key "11" when open, no entry when closed.
    assert (" 11 " in text) is preview


@pytest.mark.parametrize("preview", [False, True])
def test_nginx_routing_during_a_sticky_canary_or_an_ab_test_names_the_active_pool(preview):
    sticky = nginx_text("green", sticky={"canary": ["app3"], "share": 20, "token": "t1"}, preview=preview)
    split = [{"variant": "blue", "percent": 50}, {"variant": "green", "percent": 50}]
    ab = nginx_text("blue", ab={"token": "exp1", "split": split}, preview=preview)
    assert live_pool(sticky, "shop-eu", "nginx") == "green"
    assert live_pool(ab, "shop-eu", "nginx") == "blue"
    assert ("~^11:" in sticky, "~^11:" in ab) == (preview, preview)


def test_no_routing_or_another_services_routing_names_no_pool():
    assert live_pool(None, "shop-eu", "haproxy") is None
    assert live_pool("", "shop-eu", "nginx") is None
    assert live_pool(_haproxy_map.render([("active", "be_shop_blue")]), "shop-eu", "haproxy") is None
    assert live_pool(nginx_text("blue"), "shop", "nginx") is None


def slurped(name: str, text: str | None) -> dict:
    if text is None:
        return {"item": {"name": name}, "failed": False, "msg": "file not found: /etc/x"}
    return {"item": {"name": name}, "content": base64.b64encode(text.encode()).decode(), "encoding": "base64"}


def test_live_pools_reads_a_slurp_loop_and_leaves_out_missing_files():
    results = [slurped("shop-eu", _haproxy_map.render([("active", "be_shop-eu_green")])), slurped("web", None)]
    assert live_pools(results, "haproxy") == {"shop-eu": "green"}


@pytest.mark.parametrize("args, message", [
    (("text", "shop", "traefik"), "lb must be haproxy or nginx"),
    (("text", "", "nginx"), "expected a service name"),
    ((["text"], "shop", "nginx"), "expected the routing's text"),
])
def test_live_pool_refuses_bad_arguments(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        live_pool(*args)


def test_live_pools_refuses_results_without_their_service():
    with pytest.raises(AnsibleFilterError, match="each result needs its service as the item"):
        live_pools([{"item": "shop", "content": ""}], "nginx")
    with pytest.raises(AnsibleFilterError, match="expected the results of a slurp loop"):
        live_pools({"results": []}, "nginx")


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.parametrize("active", ["blue", "green", "maintenance"])
def test_live_previews_read_the_routing_each_lb_writes(active, preview):
    """As the routing steps write it (HAProxy's map entries from haproxy_route_entries, nginx's routing), in a
    plain route, a sticky canary and an A/B test."""
    from ansible_collections.fleet.rollout.plugins.filter.services import haproxy_route_entries
    entries = haproxy_route_entries(SERVICE, active, preview)
    haproxy = _haproxy_map.render(list(entries.items()) + [("sticky.canary", "be_shop-eu_green_canary")])
    split = [{"variant": "blue", "percent": 50}, {"variant": "green", "percent": 50}]
    nginx = [nginx_text(active, preview=preview)]
    if active != "maintenance":  # a split needs a pool to split
        nginx += [nginx_text(active, sticky={"canary": GROUPS[active][:1], "share": 20, "token": "t1"}, preview=preview),
                  nginx_text(active, ab={"token": "exp1", "split": split}, preview=preview)]
    assert live_previews([slurped("shop-eu", haproxy), slurped("web", None)], "haproxy") == {"shop-eu": preview}
    for text in nginx:
        assert live_previews([slurped("shop-eu", text)], "nginx") == {"shop-eu": preview}
    # Another service's routing says nothing about this one's preview.
    assert live_previews([slurped("shop", nginx[0])], "nginx") == {"shop": False}


def test_live_previews_refuse_an_unknown_lb_and_results_without_their_service():
    with pytest.raises(AnsibleFilterError, match="lb must be haproxy or nginx"):
        live_previews([], "traefik")
    with pytest.raises(AnsibleFilterError, match="live_previews: each result needs its service as the item"):
        live_previews([{"item": "shop", "content": ""}], "nginx")
