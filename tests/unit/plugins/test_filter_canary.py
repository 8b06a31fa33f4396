"""canary_weights: integer LB weights whose share is the step's, for any split of hosts."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.canary import canary_weights


def hosts(prefix, count):
    return ["%s%d" % (prefix, i) for i in range(count)]


@pytest.mark.parametrize("canaries, stables", [(1, 3), (1, 1), (2, 2), (1, 9), (3, 17), (5, 25), (10, 2)])
@pytest.mark.parametrize("step", [1, 5, 10, 25, 33.3, 50, 75, 90, 99])
def test_share_is_within_a_point_of_the_step(canaries, stables, step):
    canary, stable = hosts("c", canaries), hosts("s", stables)
    result = canary_weights(canary, stable, step)
    weights = result["weights"]
    assert set(weights) == set(canary) | set(stable)
    assert all(1 <= w <= 100 for w in weights.values())
    share = 100.0 * sum(weights[h] for h in canary) / sum(weights.values())
    assert result["share"] == round(share, 2)
    # As near as weights 1-100 allow: within a point, or 1 against 100 when that is still too much (or too little).
    floor = 100.0 * canaries / (canaries + 100 * stables)
    ceiling = 100.0 * 100 * canaries / (100 * canaries + stables)
    assert (abs(share - step) <= 1.0 or (step < floor and share == pytest.approx(floor))
            or (step > ceiling and share == pytest.approx(ceiling))), (step, result)


def test_the_ends():
    assert canary_weights(["a"], ["b", "c"], 0) == {"weights": {"a": 0, "b": 100, "c": 100}, "share": 0.0}
    assert canary_weights(["a"], ["b", "c"], "100") == {"weights": {"a": 100, "b": 0, "c": 0}, "share": 100.0}
    assert canary_weights(["a"], ["b", "c", "d"], 5) == {
        "weights": {"a": 15, "b": 95, "c": 95, "d": 95}, "share": 5.0}
    # Every host a canary: they keep their weight.
    assert canary_weights(["a", "b"], [], 30) == {"weights": {"a": 100, "b": 100}, "share": 100.0}


@pytest.mark.parametrize("canary, stable, step, message", [
    (["a"], ["b"], 101, "expected a percentage 0-100"),
    (["a"], ["b"], "half", "expected a percentage 0-100"),
    (["a"], ["b"], True, "expected a percentage 0-100"),
    ([], ["b"], 5, "no canary hosts"),
    (["a", "b"], ["b"], 5, "b both canary and stable"),
])
def test_bad_input(canary, stable, step, message):
    with pytest.raises(AnsibleFilterError, match=message):
        canary_weights(canary, stable, step)
