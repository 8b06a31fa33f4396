"""Checking and rendering of nginx upstream/routing files (pure), and apply() against a real nginx."""

from __future__ import annotations

import copy
import os
import socket
from decimal import Decimal

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _nginx_upstream as nu


def addr(url):
    return url[len("http://"):]


def realistic():
    upstreams = [
        {"name": "shop_blue", "method": "least_conn", "keepalive": 16, "servers": [
            {"address": "10.0.0.11:8080", "weight": 3, "max_fails": 2, "fail_timeout": 10},
            {"address": "app-12.example.internal:8080", "down": True},
            {"address": "10.0.0.13:8080", "backup": True},
        ]},
        {"name": "shop.green-2", "method": "hash", "hash_key": "$cookie_uid", "servers": [
            {"address": "[::1]:8081", "weight": 1, "max_fails": 0},
            {"address": "unix:/run/shop/green.sock", "down": False, "backup": False},
        ]},
    ]
    maps = [{"source": "$cookie_variant", "variable": "$fleet_pool", "default": "shop_blue", "entries": [
        {"key": "green", "value": "shop.green-2"},
        {"key": "~^beta-\\d+$", "value": "shop.green-2"},
        {"key": "Mozilla Firefox", "value": "$fleet_split"},
    ]}]
    split_clients = [{"key": "${remote_addr}${http_user_agent}", "variable": "$fleet_split", "buckets": [
        {"percent": "*", "value": "shop_blue"},
        {"percent": 10, "value": "shop.green-2"},
        {"percent": "12.5%", "value": ""},
        {"percent": 0.25, "value": "shop_blue"},
    ]}]
    return upstreams, maps, split_clients


EXPECTED = r"""# Managed by fleet.rollout.nginx_upstream: do not edit by hand,
# the next run of the module overwrites this file.

upstream shop_blue {
    least_conn;
    server 10.0.0.11:8080 weight=3 max_fails=2 fail_timeout=10s;
    server app-12.example.internal:8080 down;
    server 10.0.0.13:8080 backup;
    keepalive 16;
}

upstream shop.green-2 {
    hash $cookie_uid;
    server [::1]:8081 weight=1 max_fails=0;
    server unix:/run/shop/green.sock;
}

map $cookie_variant $fleet_pool {
    default shop_blue;
    green shop.green-2;
    "~^beta-\d+$" shop.green-2;
    "Mozilla Firefox" $fleet_split;
}

split_clients "${remote_addr}${http_user_agent}" $fleet_split {
    10% shop.green-2;
    12.5% "";
    0.25% shop_blue;
    * shop_blue;
}
"""


def test_render_realistic_input():
    upstreams, maps, split_clients = realistic()
    assert nu.check_routing(upstreams, maps, split_clients) == []
    assert nu.render(upstreams, maps, split_clients) == EXPECTED


def test_render_is_deterministic_and_does_not_touch_the_input():
    data = realistic()
    kept = copy.deepcopy(data)
    first = nu.render(*data)
    assert nu.render(*copy.deepcopy(data)) == first
    assert nu.render(*data).encode() == first.encode()
    assert data == kept


def test_render_minimal_and_defaults():
    text = nu.render([{"name": "a", "servers": [{"address": "127.0.0.1:80", "weight": None, "down": None}],
                       "method": None, "keepalive": None}])
    assert text == nu.HEADER + "\nupstream a {\n    server 127.0.0.1:80;\n}\n"
    assert text.startswith("# Managed by fleet.rollout.nginx_upstream")
    assert nu.render([{"name": "a", "method": "ip_hash", "servers": [{"address": "h:1"}]}]).count("    ip_hash;\n") == 1


def test_rendered_file_is_accepted_by_real_nginx(nginx_lab):
    upstreams, maps, split_clients = realistic()
    upstreams[0]["servers"][1]["address"] = "localhost:8080"  # must resolve for nginx -t
    with open(nginx_lab.routing_file, "w", encoding="utf-8") as handle:
        handle.write(nu.render(upstreams, maps, split_clients))
    done = nginx_lab.command("-t")
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("value, expected", [
    (10, Decimal("10")), ("10", Decimal("10")), ("12.5%", Decimal("12.5")), (0.01, Decimal("0.01")),
    (100, Decimal("100")), ("*", None), (None, None), (" 7 % ", Decimal("7")),
])
def test_parse_percent(value, expected):
    assert nu.parse_percent(value) == expected


@pytest.mark.parametrize("value, message", [
    (0, "above 0"), (-1, "above 0"), (100.5, "at most 100"), ("0.001", "at most two decimals"),
    ("ten", "expected a number"), (True, "expected a number"), ("nan", "above 0"),
])
def test_parse_percent_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        nu.parse_percent(value)


def one_upstream(**server):
    entry = {"address": "127.0.0.1:8080"}
    entry.update(server)
    return [{"name": "u", "servers": [entry]}]


def errors(upstreams=None, maps=None, split_clients=None):
    return "; ".join(nu.check_routing(upstreams, maps, split_clients))


OK_MAP = {"source": "$cookie_v", "variable": "$pool", "default": "u", "entries": [{"key": "b", "value": "u"}]}
OK_SPLIT = {"key": "$cookie_uid", "variable": "$split", "buckets": [{"percent": 50, "value": "a"}, {"value": "b"}]}


def with_changes(base, **changes):
    item = copy.deepcopy(base)
    item.update(changes)
    return item


@pytest.mark.parametrize("kwargs, expected", [
    # upstreams
    ({"upstreams": [{"name": "bad name", "servers": [{"address": "h:1"}]}]}, "upstreams[0].name: expected letters"),
    # A trailing newline passes a regex that ends in $.
    ({"upstreams": [{"name": "pool\n", "servers": [{"address": "h:1"}]}]}, "upstreams[0].name: expected letters"),
    ({"upstreams": [{"name": None, "servers": [{"address": "h:1"}]}]}, "upstreams[0].name: expected letters"),
    ({"upstreams": [{"name": "u", "servers": []}]}, "upstreams[0].servers: an upstream needs at least one server"),
    ({"upstreams": [{"name": "u"}]}, "upstreams[0].servers: an upstream needs at least one server"),
    ({"upstreams": one_upstream() + one_upstream()}, "upstreams[1].name: upstream 'u' is already defined by upstreams[0]"),
    ({"upstreams": one_upstream(weight=0)}, "upstreams[0].servers[0].weight: must be at least 1, got 0 (nginx rejects weight=0"),
    ({"upstreams": one_upstream(weight="3")}, "upstreams[0].servers[0].weight: expected an integer"),
    ({"upstreams": one_upstream(max_fails=-1)}, "upstreams[0].servers[0].max_fails: must be at least 0"),
    ({"upstreams": one_upstream(fail_timeout=-5)}, "upstreams[0].servers[0].fail_timeout: must be at least 0"),
    ({"upstreams": one_upstream(down="yes")}, "upstreams[0].servers[0].down: expected true or false"),
    ({"upstreams": one_upstream(address="10.0.0.1")}, "upstreams[0].servers[0].address: expected host:port"),
    ({"upstreams": one_upstream(address="10.0.0.1:0")}, "upstreams[0].servers[0].address: expected host:port, [ipv6]:port or unix:/path with a port 1-65535"),
    ({"upstreams": one_upstream(address="10.0.0.1:99999")}, "with a port 1-65535"),
    ({"upstreams": one_upstream(address="[::zz]:80")}, "upstreams[0].servers[0].address: expected host:port, [ipv6]:port or unix:/path; '::zz' is not an IPv6"),
    ({"upstreams": one_upstream(address="unix:relative.sock")},
     "upstreams[0].servers[0].address: expected host:port, [ipv6]:port or unix:/path; a unix socket path must be absolute"),
    ({"upstreams": one_upstream(address="bad_host:80")}, "upstreams[0].servers[0].address: expected host:port"),
    ({"upstreams": one_upstream(address=None)}, "upstreams[0].servers[0].address: is required"),
    ({"upstreams": [{"name": "u", "method": "ip_hash", "servers": [{"address": "h:1"}, {"address": "h:2", "backup": True}]}]},
     "upstreams[0].servers[1].backup: nginx does not allow backup servers with method=ip_hash"),
    ({"upstreams": [{"name": "u", "method": "random", "servers": [{"address": "h:1", "backup": True}]}]}, "with method=random"),
    ({"upstreams": [{"name": "u", "method": "hash", "hash_key": "$a", "servers": [{"address": "h:1", "backup": True}]}]},
     "with method=hash"),
    ({"upstreams": [{"name": "u", "method": "hash", "servers": [{"address": "h:1"}]}]}, "upstreams[0].hash_key: required with method=hash"),
    ({"upstreams": [{"name": "u", "hash_key": "$a", "servers": [{"address": "h:1"}]}]},
     "upstreams[0].hash_key: only used with method=hash"),
    ({"upstreams": [{"name": "u", "method": "fastest", "servers": [{"address": "h:1"}]}]}, "upstreams[0].method: expected one of"),
    ({"upstreams": [{"name": "u", "keepalive": 0, "servers": [{"address": "h:1"}]}]}, "upstreams[0].keepalive: must be at least 1"),
    ({"upstreams": "u"}, "upstreams: expected a list"),
    ({"upstreams": ["u"]}, "upstreams[0]: expected a dictionary"),
    # maps
    ({"maps": [with_changes(OK_MAP, source="cookie_v")]}, "maps[0].source: expected an nginx variable"),
    ({"maps": [with_changes(OK_MAP, variable="pool")]}, "maps[0].variable: expected a variable name such as $fleet_pool"),
    ({"maps": [with_changes(OK_MAP, variable="$po-ol")]}, "maps[0].variable: expected a variable name"),
    ({"maps": [OK_MAP, OK_MAP]}, "maps[1].variable: $pool is already defined by maps[0].variable"),
    ({"maps": [OK_MAP], "split_clients": [with_changes(OK_SPLIT, variable="$pool")]},
     "split_clients[0].variable: $pool is already defined by maps[0].variable"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "default", "value": "x"}])]},
     "maps[0].entries[0].key: 'default' is a parameter of nginx's map block"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "include", "value": "x"}])]}, "maps[0].entries[0].key: 'include'"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "Beta", "value": "x"}, {"key": "beta", "value": "y"}])]},
     "maps[0].entries[1].key: 'beta' repeats entries[0] (nginx compares keys case-insensitively)"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "b", "value": None}])]}, "maps[0].entries[0].value: is required"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "a{2}", "value": "x"}])]}, "maps[0].entries[0].key: must not contain { }"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "a\\\\b", "value": "x"}])]}, "maps[0].entries[0].key: must not contain a double backslash"),
    ({"maps": [with_changes(OK_MAP, entries=[{"key": "a\\", "value": "x"}])]}, "or end with a backslash"),
    # split_clients
    ({"split_clients": [with_changes(OK_SPLIT, key="")]}, "split_clients[0].key: expected what to hash"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[])]}, "split_clients[0].buckets: give at least one bucket"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[{"percent": 60, "value": "a"}, {"percent": 40.01, "value": "b"}])]},
     "split_clients[0].buckets: the percentages add up to 100.01, more than 100"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[{"percent": "*", "value": "a"}, {"value": "b"}])]},
     "split_clients[0].buckets[1].percent: only one bucket can take the rest"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[{"percent": 0, "value": "a"}])]},
     "split_clients[0].buckets[0].percent: must be above 0"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[{"percent": 33.333, "value": "a"}])]},
     "split_clients[0].buckets[0].percent: at most two decimals"),
    ({"split_clients": [with_changes(OK_SPLIT, buckets=[{"percent": 10}])]}, "split_clients[0].buckets[0].value: is required"),
])
def test_every_problem_names_its_option(kwargs, expected):
    assert expected in errors(**kwargs)


@pytest.mark.parametrize("bad", ["a;b", "a{", "a}", 'a"b', "a'b", "a#b", "a\nb", "a\rb", "a\tb"])
def test_nginx_syntax_cannot_be_injected(bad):
    found = errors(
        upstreams=[{"name": bad, "method": "hash", "hash_key": "$x" + bad,
                    "servers": [{"address": "h:1" + bad}, {"address": "unix:/x" + bad}]}],
        maps=[{"source": "$s" + bad, "variable": "$v" + bad, "default": bad, "entries": [{"key": bad, "value": bad}]}],
        split_clients=[{"key": "$k" + bad, "variable": "$w", "buckets": [{"percent": 5, "value": bad}]}],
    )
    for where in ("upstreams[0].name", "upstreams[0].hash_key", "upstreams[0].servers[0].address",
                  "upstreams[0].servers[1].address", "maps[0].source", "maps[0].variable", "maps[0].default",
                  "maps[0].entries[0].key", "maps[0].entries[0].value", "split_clients[0].key",
                  "split_clients[0].buckets[0].value"):
        assert where + ":" in found, (where, found)


def test_braces_are_allowed_only_around_variable_names():
    split = with_changes(OK_SPLIT, key="${remote_addr}AAA${http_user_agent}")
    assert errors(split_clients=[split]) == ""
    assert "split_clients[0].key: must not contain } (braces only as in ${name})" in errors(split_clients=[with_changes(OK_SPLIT, key="${a}}")])
    assert "must not contain { }" in errors(split_clients=[with_changes(OK_SPLIT, key="${a b}")])


def test_valid_input_has_no_problems():
    assert nu.check_routing(one_upstream(weight=5, max_fails=1, fail_timeout=3, backup=True, down=False), [OK_MAP],
                            [OK_SPLIT]) == []
    assert nu.check_routing() == []


# --- apply() against a real nginx ------------------------------------------------

def pool_file(url, name="pool"):
    return nu.render([{"name": name, "servers": [{"address": addr(url)}]}],
                     [{"source": "$http_x_variant", "variable": "$fleet_pool", "default": name}])


def apply(lab, content, **kwargs):
    options = dict(binary=lab.binary, config=lab.config, prefix=lab.root, pid_file=lab.pid_file)
    options.update(kwargs)
    return nu.apply(lab.routing_file, content, **options)


def test_nginx_argv_never_needs_a_shell():
    assert nu.nginx_argv("nginx", "/etc/nginx/nginx.conf", None, "-t") == ["nginx", "-c", "/etc/nginx/nginx.conf", "-t"]
    assert nu.nginx_argv("/usr/sbin/nginx", "/c x.conf", "/p", "-s", "reload") == [
        "/usr/sbin/nginx", "-p", "/p", "-c", "/c x.conf", "-s", "reload"]


def test_first_install_before_nginx_runs_validates_and_warns(nginx_lab, run_app):
    url = run_app(version="1.0.0")[1]
    result = apply(nginx_lab, pool_file(url))
    assert result["changed"] is True and result["reloaded"] is False
    assert "nginx is not running" in result["warnings"][0]
    with open(nginx_lab.routing_file, encoding="utf-8") as handle:
        assert handle.read() == pool_file(url)
    nginx_lab.start()
    assert nginx_lab.version() == "1.0.0"


def test_apply_switches_traffic_and_same_content_runs_no_nginx(nginx_lab, run_app):
    old_url = run_app(version="1.0.0")[1]
    new_url = run_app(version="2.0.0")[1]
    apply(nginx_lab, pool_file(old_url))
    nginx_lab.start()
    assert nginx_lab.version() == "1.0.0"
    workers = nginx_lab.workers()

    result = apply(nginx_lab, pool_file(new_url))
    assert result["changed"] is True and result["reloaded"] is True
    assert result["old_workers"] == len(workers) == 1
    assert result["workers_exited_seconds"] is None
    assert result["diff"]["before"] == pool_file(old_url) and result["diff"]["after"] == pool_file(new_url)
    assert nginx_lab.workers() - workers  # a new generation (the old one may still be exiting)
    assert [nginx_lab.version() for count in range(5)] == ["2.0.0"] * 5

    # Unchanged: not even a binary is needed, no reload happens.
    workers = nginx_lab.workers()
    again = apply(nginx_lab, pool_file(new_url), binary="/nonexistent/nginx")
    assert again["changed"] is False and again["reloaded"] is False
    assert nginx_lab.workers() == workers


def test_check_mode_changes_nothing(nginx_lab, run_app):
    old_url = run_app(version="1.0.0")[1]
    new_url = run_app(version="2.0.0")[1]
    apply(nginx_lab, pool_file(old_url))
    nginx_lab.start()
    workers = nginx_lab.workers()
    result = apply(nginx_lab, pool_file(new_url), check_mode=True)
    assert result["changed"] is True and result["reloaded"] is False
    assert result["diff"]["after"] == pool_file(new_url)
    with open(nginx_lab.routing_file, encoding="utf-8") as handle:
        assert handle.read() == pool_file(old_url)
    assert nginx_lab.workers() == workers


def test_failed_validation_restores_the_old_file(nginx_lab, run_app):
    url = run_app(version="1.0.0")[1]
    apply(nginx_lab, pool_file(url))
    nginx_lab.start()
    workers = nginx_lab.workers()
    bad = nu.render([{"name": "pool", "servers": [{"address": "nonexistent.invalid:80"}]}],
                    [{"source": "$http_x_variant", "variable": "$fleet_pool", "default": "pool"}])
    with pytest.raises(nu.NginxApplyError, match="host not found in upstream") as failure:
        apply(nginx_lab, bad)
    assert "previous file was restored" in str(failure.value)
    assert failure.value.result["changed"] is False
    with open(nginx_lab.routing_file, encoding="utf-8") as handle:
        assert handle.read() == pool_file(url)
    assert nginx_lab.workers() == workers
    assert nginx_lab.version() == "1.0.0"


def test_failed_validation_of_a_new_file_removes_it(nginx_lab, run_app):
    url = run_app(version="1.0.0")[1]
    apply(nginx_lab, pool_file(url))
    nginx_lab.start()
    other = os.path.join(nginx_lab.conf_d, "other.conf")
    content = nu.render([{"name": "pool", "servers": [{"address": "127.0.0.1:9"}]}])  # duplicate upstream
    with pytest.raises(nu.NginxApplyError, match='duplicate upstream "pool"'):
        nu.apply(other, content, binary=nginx_lab.binary, config=nginx_lab.config, prefix=nginx_lab.root,
                 pid_file=nginx_lab.pid_file)
    assert not os.path.exists(other)
    assert nginx_lab.version() == "1.0.0"


def test_reload_refused_by_the_master_restores_and_reloads_the_old_file(nginx_lab, run_app):
    url = run_app(version="1.0.0")[1]
    apply(nginx_lab, pool_file(url))
    nginx_lab.start()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        # nginx -t ignores "address in use", the master does not: validation passes, the reload fails.
        refused = pool_file(url) + "\nserver {\n    listen 127.0.0.1:%d;\n}\n" % busy.getsockname()[1]
        with pytest.raises(nu.NginxApplyError, match="no new worker process within 2s") as failure:
            apply(nginx_lab, refused, reload_timeout=2)
    assert "previous %s was restored and nginx was reloaded with it" % nginx_lab.routing_file in str(failure.value)
    assert failure.value.result["changed"] is False
    with open(nginx_lab.routing_file, encoding="utf-8") as handle:
        assert handle.read() == pool_file(url)
    assert nginx_lab.version() == "1.0.0"


def test_failed_reload_command_restores_the_old_file(nginx_lab, run_app):
    url = run_app(version="1.0.0")[1]
    apply(nginx_lab, pool_file(url))
    nginx_lab.start()
    workers = nginx_lab.workers()
    with pytest.raises(nu.NginxApplyError, match=r"nginx -s reload failed \(exit 1\).*invalid number of arguments"):
        apply(nginx_lab, pool_file(url) + "\nupstream {\n", validate=False)
    with open(nginx_lab.routing_file, encoding="utf-8") as handle:
        assert handle.read() == pool_file(url)
    assert nginx_lab.version() == "1.0.0"
    assert nginx_lab.workers() - workers  # the rollback reload


def test_reload_false_validates_but_does_not_reload(nginx_lab, run_app):
    old_url = run_app(version="1.0.0")[1]
    new_url = run_app(version="2.0.0")[1]
    apply(nginx_lab, pool_file(old_url))
    nginx_lab.start()
    workers = nginx_lab.workers()
    result = apply(nginx_lab, pool_file(new_url), reload=False)
    assert result["changed"] is True and result["reloaded"] is False and result["warnings"] == []
    assert nginx_lab.workers() == workers
    assert nginx_lab.version() == "1.0.0"


def test_missing_binary_or_directory_changes_nothing(tmp_path):
    path = str(tmp_path / "up.conf")
    with pytest.raises(nu.NginxApplyError, match="nginx_binary: cannot find an executable '/nonexistent/nginx'"):
        nu.apply(path, "x", binary="/nonexistent/nginx")
    with pytest.raises(nu.NginxApplyError, match="path: the directory .* does not exist"):
        nu.apply(str(tmp_path / "missing" / "up.conf"), "x", validate=False, reload=False)
    assert not os.path.exists(path)


def test_master_and_workers_are_read_from_proc(nginx_lab, run_app, tmp_path):
    assert nu.read_master_pid(str(tmp_path / "none.pid")) is None
    stale = tmp_path / "stale.pid"
    stale.write_text("%d\n" % os.getpid())  # alive, but not an nginx master
    assert nu.read_master_pid(str(stale)) is None
    apply(nginx_lab, pool_file(run_app()[1]))
    nginx_lab.start()
    master = nu.read_master_pid(nginx_lab.pid_file)
    assert master == nginx_lab.master()
    assert nu.worker_pids(master) == nginx_lab.workers()
