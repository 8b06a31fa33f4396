"""live_pool / live_pools: the pool an LB's own routing sends users to, read from what the collection
writes (HAProxy's pool map, nginx's routing file rendered by nginx_routing and nginx_upstream)."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.live_pool import live_pool, live_pools
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
