"""rollout_status: the data and the table fleet.rollout.status prints, from what the modules return."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.filter.status import rollout_status

SERVICE = {"name": "shop", "port": 80, "pools": [{"name": "blue", "group": "blue", "port": 8080},
                                                 {"name": "green", "group": "green", "port": 8080}]}
GROUPS = {"blue": ["app1", "app2"], "green": ["app3"]}
HOSTVARS = {"app1": {}, "app2": {"ansible_host": "10.0.0.2"}, "app3": {"rollout_address": "10.0.0.3"}}


def state(active="blue", history=()):
    return {"service": "shop", "lb": "haproxy", "active_pool": active,
            "pools": {"blue": {"release": "1.0.0"}, "green": {"release": "2.0.1-bad", "status": "failed"}},
            "history": list(history)}


def haproxy_row(pool, server, weight=100, admin="ready", status="UP", sessions=0):
    return {"pool": pool, "side": "main", "server": server, "address": None, "admin_state": admin, "status": status,
            "in_rotation": admin == "ready" and status == "UP" and weight > 0, "weight": weight,
            "initial_weight": 100, "sessions": sessions}


SERVERS = [haproxy_row("blue", "app1", sessions=3), haproxy_row("blue", "app2", admin="drain"),
           haproxy_row("green", "app3", status="DOWN"), dict(haproxy_row("blue", "app1", weight=0), side="canary")]
RELEASES = {"app1": {"slots": {"main": {"version": "1.0.0", "previous": "0.9.0"}}},
            "app2": {"slots": {"main": {"version": "1.0.0"}}},
            "app3": {"slots": {"main": {"version": "2.0.1-bad", "previous": "1.0.0"}}}}


def status(**kwargs):
    args = dict(lb_states={"lb1": state(), "lb2": state()}, lb_servers={"lb1": SERVERS, "lb2": SERVERS},
                locks={"lb1": None, "lb2": None}, releases=RELEASES)
    args.update(kwargs)
    return rollout_status(SERVICE, args["lb_states"], args["lb_servers"], args["locks"], args["releases"], GROUPS,
                          HOSTVARS, history=args.get("history", 5), now=1000.0)


def test_rows_join_the_lbs_view_and_the_hosts_releases():
    result = status()
    assert result["problems"] == [] and result["active_pool"] == "blue" and result["lb"] == "haproxy"
    rows = {row["host"]: row for row in result["hosts"]}
    assert [(r["host"], r["pool"], r["slot"], r["live"], r["previous"]) for r in result["hosts"]] == [
        ("app1", "blue", "main", "1.0.0", "0.9.0"), ("app2", "blue", "main", "1.0.0", None),
        ("app3", "green", "main", "2.0.1-bad", "1.0.0")]
    # The pool's own backend counts, not its sticky-canary twin.
    assert rows["app1"]["lbs"]["lb1"]["weight"] == 100 and rows["app1"]["lbs"]["lb1"]["side"] == "main"
    table = "\n".join(result["table"])
    assert table.startswith("service shop: haproxy on lb1, lb2, active pool blue")
    assert "UP w=100 s=3" in table and "DRAIN UP w=100" in table and "DOWN w=100" in table
    assert "2.0.1-bad (failed)" in table and "blue *" in table and "green *" not in table
    assert "rollout running: none" in table and "last rollouts: none recorded" in table


def test_nginx_servers_are_matched_by_address_and_port():
    rows = [{"pool": "blue", "side": "main", "server": None, "address": "app1:8080", "admin_state": "ready",
             "status": "UP", "in_rotation": True, "weight": 7},
            {"pool": "blue", "side": "main", "server": None, "address": "10.0.0.2:8080", "admin_state": "maint",
             "status": "DOWN", "in_rotation": False, "weight": 0},
            {"pool": "green", "side": "main", "server": None, "address": "10.0.0.3:8080", "admin_state": "ready",
             "status": "UP", "in_rotation": True, "weight": 1}]
    result = status(lb_servers={"lb1": rows, "lb2": rows})
    assert [row["lbs"]["lb1"]["weight"] for row in result["hosts"]] == [7, 0, 1]
    assert result["problems"] == []


def test_what_looks_wrong_is_named():
    result = status(lb_states={"lb1": state("blue"), "lb2": state("green")},
                    lb_servers={"lb1": SERVERS[:2], "lb2": None}, releases=dict(RELEASES, app2=None))
    assert result["active_pool"] is None
    assert result["problems"] == [
        "the LBs disagree on the active pool: blue on lb1, green on lb2",
        "could not read the servers on lb2",
        "app3 (pool green) is not among the servers of lb1",
    ]
    rows = {row["host"]: row for row in result["hosts"]}
    assert rows["app2"]["readable"] is False and rows["app3"]["lbs"]["lb1"] is None
    table = "\n".join(result["table"])
    assert "unreadable" in table and "not on LB" in table and "PROBLEM: could not read the servers on lb2" in table


def test_an_lb_without_state_is_a_problem_not_a_crash():
    result = status(lb_states={"lb1": None, "lb2": state()})
    assert result["problems"][0].startswith("no rollout state for shop on lb1")
    assert result["active_pool"] == "blue"


def test_the_running_rollout_and_an_expired_lock():
    holder = {"owner": "ops@ctl [run 1]", "started": 900.0, "expires": 4500.0,
              "info": {"strategy": "canary", "version": "2.0.0", "step": "2 of 5 (10 %)"}}
    result = status(locks={"lb1": holder, "lb2": holder})
    assert result["lock"]["lbs"] == ["lb1", "lb2"] and result["lock"]["expired"] is False
    assert any(line.startswith("rollout running: ops@ctl [run 1] (step=2 of 5 (10 %), strategy=canary, version=2.0.0)")
               for line in result["table"])
    stale = status(locks={"lb1": dict(holder, expires=999.0), "lb2": None})
    assert stale["lock"]["expired"] is True and stale["lock"]["lbs"] == ["lb1"]
    assert any("EXPIRED" in line for line in stale["table"])


def test_a_corrupt_lock_is_shown_as_refusing_every_rollout():
    corrupt = {"owner": "(corrupt lock file: expires is null, not a time)", "corrupt": "expires is null, not a time"}
    result = status(locks={"lb1": corrupt, "lb2": None})
    assert result["lock"]["expired"] is False and result["lock"]["corrupt"] == "expires is null, not a time"
    assert "rollout lock: CORRUPT lock file (expires is null, not a time): every rollout is refused until " \
           "rollout_lock_force=true" in result["table"]
    assert not any("EXPIRED" in line for line in result["table"])


def test_history_keeps_the_last_rollouts_newest_first_in_the_table():
    rollouts = [{"event": "rollout", "strategy": "ramped", "version": "1.%d.0" % i, "outcome": "succeeded",
                 "owner": "ops", "time": 100.0 + i} for i in range(7)]
    rollback = {"event": "rollback", "outcome": "succeeded", "version": "1.5.0", "to_pool": "blue", "time": 200.0}
    events = [{"event": "route", "time": 1.0}] + rollouts + [rollback]
    result = status(lb_states={"lb1": state(history=events), "lb2": state(history=events)}, history=3)
    assert [e.get("version") for e in result["history"]] == ["1.5.0", "1.6.0", "1.5.0"]
    lines = result["table"]
    start = lines.index("last rollouts:")
    assert "rollback" in lines[start + 1] and "to_pool=blue" in lines[start + 1]
    assert "1.6.0" in lines[start + 2] and "1.5.0" in lines[start + 3]
