"""fleet.rollout.ab_report as a task runs it: per-LB samples merged, the report, clear errors."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.modules import ab_report


def sample(rates: dict, count: int, offset: int = 0) -> dict:
    """Deterministic users: user i of a variant converts when i is in the first rate share of every 100."""
    def counts(index, rate):
        return {"requests": 2, "errors": 0, "conversions": int(index % 100 < rate * 100)}

    return {variant: {"%s-%d" % (variant, index): counts(index, rate) for index in range(offset, offset + count)}
            for variant, rate in rates.items()}


def test_two_lbs_samples_make_one_report_with_a_winner(run_module):
    rates = {"a": 0.10, "b": 0.20}
    out = run_module(ab_report.main, {"samples": [sample(rates, 600), sample(rates, 600, offset=600)], "min_effect": 5})
    assert "failed" not in out and out["changed"] is False
    assert [(v["variant"], v["users"], v["conversions"]) for v in out["variants"]] == [("a", 1200, 120), ("b", 1200, 240)]
    assert out["decision"] == "winner" and out["winner"] == "b" and out["users_in_several_variants"] == 0
    assert out["variants"][1]["lift"] == 10.0 and out["variants"][1]["relative_lift"] == 100.0
    assert "decision: winner b" in out["table"]


def test_a_user_in_two_variants_is_reported(run_module):
    lb1, lb2 = sample({"a": 0.1}, 50), sample({"b": 0.1}, 50)
    lb2["b"]["a-3"] = {"requests": 1}
    out = run_module(ab_report.main, {"samples": [lb1, lb2]})
    assert out["users_in_several_variants"] == 1 and out["users_in_several_variants_sample"] == ["a-3"]
    assert out["decision"] == "keep_collecting"


def test_bad_input_fails_naming_the_option(run_module):
    out = run_module(ab_report.main, {"samples": [sample({"a": 0.1, "b": 0.1}, 10)], "control": "c"})
    assert out["failed"] is True and out["msg"] == "control: 'c' is not one of the variants seen (a, b)"
    out = run_module(ab_report.main, {"samples": [sample({"a": 0.1}, 10)]})
    assert out["failed"] is True and out["msg"].startswith("an A/B test needs two variants or more")
