"""The A/B report: its statistics against statsmodels and SciPy on many generated tables (equal to 1e-6),
and its decisions.

statsmodels and SciPy are test-only dependencies (tests/unit/requirements.txt); the collection never needs them.
"""

from __future__ import annotations

import random

import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_effectsize, proportions_chisquare,
                                          proportions_ztest)

from ansible_collections.fleet.rollout.plugins.module_utils import _ab_report as ab
from ansible_collections.fleet.rollout.plugins.module_utils import _statistics as st

TOLERANCE = 1e-6


def close(ours, theirs):
    return ours == pytest.approx(float(theirs), rel=TOLERANCE, abs=TOLERANCE)


def tables(count: int, seed: int):
    """(conversions, users) of 2 to 5 variants, small and large, rates from near 0 to near 1."""
    rng = random.Random(seed)
    for _index in range(count):
        users = [rng.choice([rng.randint(10, 100), rng.randint(100, 5000), rng.randint(5000, 200000)])
                 for _variant in range(rng.randint(2, 5))]
        rate = rng.choice([0.01, 0.1, 0.3, 0.7, 0.97])
        yield [min(n - 1, max(1, int(n * min(0.99, rate * rng.uniform(0.7, 1.4))))) for n in users], users


def test_chi2_survival_matches_scipy():
    rng = random.Random(7)
    for _index in range(500):
        df, x = rng.randint(1, 30), rng.choice([rng.uniform(0, 5), rng.uniform(0, 80), rng.uniform(80, 400)])
        assert close(st.chi2_sf(x, df), scipy_stats.chi2.sf(x, df)), (x, df)
    assert st.chi2_sf(0, 3) == 1.0


def test_tests_and_intervals_match_statsmodels():
    checked = 0
    for conversions, users in tables(300, 11):
        stat, p_value, _table = proportions_chisquare(conversions, users)
        ours = st.chi_square_homogeneity(conversions, users)
        assert close(ours[0], stat) and close(ours[1], p_value) and ours[2] == len(users) - 1
        (a, b), (n_a, n_b) = conversions[:2], users[:2]
        z, p_value = proportions_ztest([a, b], [n_a, n_b])
        assert all(map(close, st.two_proportion_z(a, n_a, b, n_b, "two-sided"), (z, p_value)))
        for confidence in (0.9, 0.95, 0.99):
            low, high = confint_proportions_2indep(a, n_a, b, n_b, method="wald", compare="diff", alpha=1 - confidence)
            assert all(map(close, st.diff_confint(a, n_a, b, n_b, confidence), (low, high)))
            low, high = confint_proportions_2indep(a, n_a, b, n_b, method="log", compare="ratio", alpha=1 - confidence)
            assert all(map(close, st.ratio_confint(a, n_a, b, n_b, confidence), (low, high)))
        checked += 1
    assert checked == 300


def test_users_needed_match_statsmodels_power_solver():
    rng = random.Random(5)
    for _index in range(200):
        base = rng.uniform(0.005, 0.8)
        target = min(0.995, base + rng.uniform(0.002, 0.2))
        alpha, power = rng.choice([0.01, 0.05, 0.1]), rng.choice([0.8, 0.9])
        effect = proportion_effectsize(target, base)
        assert close(st.proportion_effectsize(target, base), effect)
        theirs = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0)
        assert st.users_for_power(effect, alpha, power) == pytest.approx(theirs, rel=TOLERANCE)


def users(rates: dict, count: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    return {variant: {"%s-%d" % (variant, index): {"requests": 3, "errors": 0, "conversions": int(rng.random() < rate)}
                      for index in range(count)} for variant, rate in rates.items()}


def report(sample, **kwargs):
    merged, several = ab.merge_samples(sample if isinstance(sample, list) else [sample])
    return ab.build_report(ab.variant_counts(merged), kwargs.pop("control", "a"), **kwargs), several


def test_a_clearly_better_variant_wins_and_equal_ones_do_not():
    won, _several = report(users({"a": 0.10, "b": 0.18}, 1000), min_effect=5)
    assert won["decision"] == "winner" and won["winner"] == "b", won["table"]
    assert won["users_needed_per_variant"] < 1000 and won["test"] == "two-proportion z"
    equal, _several = report(users({"a": 0.10, "b": 0.10}, 1000), min_effect=5)
    assert equal["decision"] == "no_significant_difference" and equal["winner"] is None, equal["table"]
    early, _several = report(users({"a": 0.10, "b": 0.18}, 200), min_effect=5)
    assert early["decision"] == "keep_collecting", early["table"]
    control, _several = report(users({"a": 0.20, "b": 0.10, "c": 0.11}, 1500), min_effect=5)
    assert control["decision"] == "winner" and control["winner"] == "a" and control["test"] == "chi-square"


def test_counts_merge_over_lbs_and_users_in_two_variants_are_found():
    lb1 = {"a": {"u1": {"requests": 2, "errors": 1, "conversions": 0}, "-": {"requests": 5}},
           "b": {"u2": {"requests": 1, "conversions": 1}}}
    lb2 = {"a": {"u1": {"requests": 1, "conversions": 1}}, "b": {"u2": {"requests": 1}, "u1": {"requests": 1}}}
    merged, several = ab.merge_samples([lb1, lb2])
    assert ab.variant_counts(merged) == {"a": {"users": 1, "requests": 8, "errors": 1, "conversions": 1},
                                         "b": {"users": 2, "requests": 3, "errors": 0, "conversions": 1}}
    assert several == ["u1"]


def with_errors(sample: dict, errors: dict) -> dict:
    """``sample`` with the first ``errors[variant]`` users of a variant failing one of their 3 requests each."""
    for variant, count in errors.items():
        for user in list(sample[variant])[:count]:
            sample[variant][user]["errors"] = 1
    return sample


def test_a_variant_whose_errors_prove_the_ceiling_broken_stops_the_test():
    # b converts far better, but 200 of its 3000 requests failed (6.7 %): proved over a 1 % ceiling, the test stops.
    stop, _several = report(with_errors(users({"a": 0.10, "b": 0.30}, 1000), {"b": 200}), min_effect=5,
                            max_error_rate=1.0)
    assert stop["decision"] == "stop" and stop["winner"] is None, stop["table"]
    assert stop["guard"]["tripped"] == ["b"] and stop["guard"]["p_values"]["b"] < 0.01, stop["guard"]
    assert stop["reason"].startswith("stop the test, every user back to the control a - b: 200 of 3000 requests failed")
    assert "decision: stop" in stop["table"]
    # Without the guard rail the same numbers crown b; 15 failures in 3000 (0.5 %) prove nothing; a failing control
    # shares the fault, so no variant is blamed.
    assert report(with_errors(users({"a": 0.10, "b": 0.30}, 1000), {"b": 200}), min_effect=5)[0]["winner"] == "b"
    few, _several = report(with_errors(users({"a": 0.10, "b": 0.30}, 1000), {"b": 15}), min_effect=5,
                           max_error_rate=1.0)
    assert few["decision"] == "winner" and few["guard"]["tripped"] == [], few["guard"]
    shared, _several = report(with_errors(users({"a": 0.10, "b": 0.30}, 1000), {"a": 200, "b": 200}), min_effect=5,
                              max_error_rate=1.0)
    assert shared["decision"] != "stop" and "a fault they share" in shared["guard"]["reason"], shared["guard"]
    # A control failing 3 % of its requests (over the ceiling too) does not hide a variant failing 17 % of them.
    worse, _several = report(with_errors(users({"a": 0.10, "b": 0.30}, 1000), {"a": 90, "b": 500}), min_effect=5,
                             max_error_rate=1.0)
    assert worse["decision"] == "stop" and worse["guard"]["tripped"] == ["b"], worse["guard"]
    assert "points more than the control a (90 of 3000), which fails too" in worse["guard"]["reason"]


def test_the_guard_rail_rarely_stops_a_variant_within_its_ceiling():
    """Reports run again and again on a variant failing exactly at the ceiling stop it at most 1 - guard_confidence
    of the time (the sequential test's bound); 400 simulated tests, a report every 50 requests up to 5,000."""
    rng = random.Random(4)
    stopped = 0
    for _test in range(400):
        errors = 0
        for requests in range(1, 5001):
            errors += rng.random() < 0.01
            if requests % 50 == 0 and ab.guard({"a": {"errors": 0, "requests": requests},
                                                "b": {"errors": errors, "requests": requests}},
                                               "a", 1.0, 0.99)["tripped"]:
                stopped += 1
                break
    assert stopped <= 8, stopped  # 1 % of 400 is 4; 8 leaves room for chance, a naive test stops far more


@pytest.mark.parametrize("kwargs, message", [
    ({"max_error_rate": 100}, "max_error_rate: expected a percentage"),
    ({"max_error_rate": 1, "guard_confidence": 0.2}, "guard_confidence: expected"),
    ({"control": "z"}, "control: 'z' is not one of the variants seen (a, b)"),
    ({"confidence": 1.0}, "confidence: expected"),
    ({"power": 0}, "power: expected"),
    ({"min_effect": 0}, "min_effect: expected"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        report(users({"a": 0.1, "b": 0.1}, 10), **kwargs)
    with pytest.raises(ValueError, match=r"samples\[0\].a.u1.requests: expected a count"):
        ab.merge_samples([{"a": {"u1": {"requests": -1}}}])


def test_the_table_reads_as_a_report():
    text = report(users({"a": 0.10, "b": 0.18}, 1000), min_effect=5)[0]["table"].splitlines()
    assert text[0].split() == ["variant", "users", "requests", "errors", "%", "conversions", "rate", "%", "lift", "pts",
                               "CI", "pts", "rel.", "lift", "%", "p"]
    assert text[1].startswith("a (control)") and text[2].startswith("b ")
    assert text[-1].startswith("decision: winner b - b converts")
