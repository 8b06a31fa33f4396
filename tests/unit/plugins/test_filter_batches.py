"""Batch planning and failure budget (pure functions)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.batches import rollout_batches, rollout_budget

HOSTS = ["h%d" % n for n in range(1, 11)]


@pytest.mark.parametrize("batches, max_unavailable, sizes", [
    (1, None, [1] * 10),
    ("1", None, [1] * 10),
    (3, None, [3, 3, 3, 1]),
    ("50%", None, [5, 5]),
    ("25%", None, [2, 2, 2, 2, 2]),   # 2.5 rounds down, as serial does
    ("5%", None, [1] * 10),           # rounds down to 0, at least 1
    ([1, "25%", "100%"], None, [1, 2, 7]),
    ([1, 2], None, [1, 2, 2, 2, 2, 1]),  # the last size repeats
    ("100%", 3, [3, 3, 3, 1]),        # max_unavailable caps every batch
    ([1, "50%"], "20%", [1, 2, 2, 2, 2, 1]),
])
def test_batch_sizes(batches, max_unavailable, sizes):
    plan = rollout_batches(HOSTS, batches, max_unavailable)
    assert [len(batch) for batch in plan] == sizes
    assert [host for batch in plan for host in batch] == HOSTS


def test_percentages_are_of_the_whole_fleet_on_a_rerun():
    # 6 of 10 hosts left: 50 % of the fleet is still 5 per batch.
    assert rollout_batches(HOSTS[4:], "50%", total=10) == [HOSTS[4:9], HOSTS[9:]]


def test_no_hosts_no_batches():
    assert rollout_batches([], "50%", total=4) == []


@pytest.mark.parametrize("batches, message", [
    (0, "ramped_batches: 0 must be at least 1"),
    ("0", "ramped_batches: '0' must be at least 1"),
    ("0%", "ramped_batches: '0%' is not a percentage above 0"),
    ("150%", "ramped_batches: '150%' is not a percentage above 0 and at most 100%"),
    ("half", "ramped_batches: expected a count or a percentage"),
    (True, "ramped_batches: expected a count or a percentage"),
    ([], "ramped_batches: expected a count, a percentage or a non-empty list"),
    ([1, "x"], "ramped_batches[1]: expected a count or a percentage"),
])
def test_bad_batches_name_the_variable(batches, message):
    with pytest.raises(AnsibleFilterError) as err:
        rollout_batches(HOSTS, batches, name="ramped_batches")
    assert message in str(err.value)


def test_bad_max_unavailable_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="ramped_max_unavailable: 0 must be at least 1"):
        rollout_batches(HOSTS, 1, 0, max_unavailable_name="ramped_max_unavailable")


@pytest.mark.parametrize("spec, total, budget", [(0, 10, 0), ("2", 10, 2), ("10%", 10, 1), ("25%", 10, 2),
                                                 ("0%", 10, 0), ("100%", 4, 4)])
def test_budget(spec, total, budget):
    assert rollout_budget(spec, total) == budget


@pytest.mark.parametrize("spec", [-1, "-1", "101%", "lots", None])
def test_bad_budget(spec):
    with pytest.raises(AnsibleFilterError, match="ramped_failure_budget"):
        rollout_budget(spec, 10, name="ramped_failure_budget")


def test_a_batch_never_takes_every_serving_host_out():
    hosts = ["app1", "app2", "app3", "app4"]
    # After an A/B promotion or a blue/green flip users reach app3 and app4 only: two at a time would take both
    # out at once, so app4 waits for the next batch.
    assert rollout_batches(hosts, 2, serving=["app3", "app4"]) == [["app1", "app2"], ["app3"], ["app4"]]
    # One pool of four at 100 %: all but one, then that one.
    assert rollout_batches(hosts, "100%", serving=hosts) == [["app1", "app2", "app3"], ["app4"]]
    # Batches that leave a serving host in rotation are kept as they are.
    assert rollout_batches(hosts, 2, serving=hosts) == [["app1", "app2"], ["app3", "app4"]]
    assert rollout_batches(hosts, 2, serving=["app1", "app3"]) == [["app1", "app2"], ["app3", "app4"]]
    # A single serving host cannot stay in rotation while it is updated: nothing to hold back.
    assert rollout_batches(["app1", "app2"], 2, serving=["app1"]) == [["app1", "app2"]]


# Capacity already missing: hosts DOWN on the LBs go first, held ones count against the cap.

def test_down_hosts_go_first_in_batches_of_their_own_size():
    assert rollout_batches(["a", "b", "c", "d"], 1, down=["c"]) == [["c"], ["a"], ["b"], ["d"]]
    assert rollout_batches(["a", "b", "c", "d"], 2, down=["d"]) == [["d", "a"], ["b", "c"]]


def test_down_hosts_not_updated_yet_count_against_max_unavailable():
    # Two down, at most 2 out: the down pair is one batch, then healthy ones one at a time.
    assert rollout_batches(["a", "b", "c", "d"], 2, 2, down=["c", "d"]) == [["c", "d"], ["a", "b"]]
    # Three down, at most 2 out: the first batch updates two down hosts (no healthy one fits beside the
    # third), the second the last down one and one healthy host.
    assert rollout_batches(["a", "b", "c", "d", "e"], 2, 2, down=["c", "d", "e"]) == [["c", "d"], ["e", "a"], ["b"]]


def test_held_hosts_shrink_the_batches_under_max_unavailable():
    assert rollout_batches(["a", "b", "c"], 2, 2, held=["x"]) == [["a"], ["b"], ["c"]]


def test_no_room_under_max_unavailable_is_refused_naming_the_hosts_out():
    with pytest.raises(AnsibleFilterError, match=r"ramped_max_unavailable: 1 host is out of rotation already \(x\).*is 1"):
        rollout_batches(["a", "b"], 1, 1, held=["x"], max_unavailable_name="ramped_max_unavailable")


def test_the_last_host_in_rotation_waits_for_a_down_one_to_come_back():
    # b is DOWN: a is the only one in rotation, so it does not leave with b; b is updated first.
    assert rollout_batches(["a", "b"], 2, serving=["a", "b"], down=["b"]) == [["b"], ["a"]]


def test_the_only_host_in_rotation_is_never_taken_out():
    with pytest.raises(AnsibleFilterError, match=r"ramped_batches: a is the only host of the active pool in rotation"
                                                 r" \(1 host is out: b\)"):
        rollout_batches(["a"], 1, serving=["a", "b"], held=["b"], name="ramped_batches")


def test_a_pool_with_every_host_down_is_updated():
    assert rollout_batches(["a", "b"], 2, serving=["a", "b"], down=["a", "b"]) == [["a", "b"]]


def test_down_hosts_outside_the_plan_stay_out():
    # c is DOWN and not to be updated (already on the release): like a held host, a must stay.
    with pytest.raises(AnsibleFilterError, match="a is the only host"):
        rollout_batches(["a"], 1, serving=["a", "c"], down=["c"])
