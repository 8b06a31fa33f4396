# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An A/B test's report: per variant users, requests, errors and conversions, lift against the
control with its confidence interval, the test of significance, the users each variant needs, and
the decision. Pure Python; the logic behind ``fleet.rollout.ab_report``.

A user converts when at least one of its requests reached the goal; the conversion rate is
converted users over users. Lifts are variant minus control (absolute, Wald interval) and variant
over control minus 1 (relative, log interval); the p-value is the pooled two-proportion z-test for
two variants and the chi-square test of homogeneity for more; the users needed per variant are
those that give the test ``power`` to detect ``min_effect`` points over the control's rate
(Cohen's h, statsmodels' NormalIndPower). All as statsmodels computes them.

The guard rail (``max_error_rate``): a variant other than the control whose errors prove its error
rate over the ceiling stops the test - decision ``stop``, whatever the conversions say. The proof is
the canary's sequential test (``_sequential``): its false-stop rate stays within
1 - ``guard_confidence`` however often the report is run during the test. While the control's own
errors prove it over the ceiling too (a fault both share), a variant is stopped only when it fails
more than the control by over the ceiling's points, with significance (two-proportion z-test).
"""

from __future__ import annotations

import math

from ansible_collections.fleet.rollout.plugins.module_utils._sequential import always_valid_p
from ansible_collections.fleet.rollout.plugins.module_utils._statistics import (
    chi_square_homogeneity, diff_confint, proportion_effectsize, ratio_confint, two_proportion_z, users_for_power)

WINNER = "winner"
NO_DIFFERENCE = "no_significant_difference"
KEEP_COLLECTING = "keep_collecting"
STOP = "stop"
ANONYMOUS = ("", "-")


def merge_samples(samples) -> tuple[dict, list[str]]:
    """Per variant, per user, [requests, errors, conversions] summed over the LBs' samples, and the users
    seen in more than one variant (a sticky assignment never makes one).

    Each sample (one per LB) is ``{variant: {user: {"requests": n, "errors": n, "conversions": n}}}``; a
    user id of ``""`` or ``"-"`` is no user: its requests count, not as a user.
    """
    merged: dict[str, dict[str, list[int]]] = {}
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise ValueError("samples[%d]: expected {variant: {user: counts}}, got %r" % (index, type(sample).__name__))
        for variant, users in sample.items():
            if not isinstance(users, dict):
                raise ValueError("samples[%d].%s: expected {user: counts}" % (index, variant))
            into = merged.setdefault(str(variant), {})
            for user, counts in users.items():
                row = into.setdefault(str(user), [0, 0, 0])
                for position, key in enumerate(("requests", "errors", "conversions")):
                    value = counts.get(key, 0) if isinstance(counts, dict) else None
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                        raise ValueError("samples[%d].%s.%s.%s: expected a count, got %r"
                                         % (index, variant, user, key, value))
                    row[position] += value
    seen: dict[str, int] = {}
    for users in merged.values():
        for user in users:
            if user not in ANONYMOUS:
                seen[user] = seen.get(user, 0) + 1
    return merged, sorted(user for user, count in seen.items() if count > 1)


def variant_counts(merged: dict) -> dict[str, dict]:
    """users, requests, errors and conversions (converted users) per variant."""
    counts = {}
    for variant, users in merged.items():
        named = [row for user, row in users.items() if user not in ANONYMOUS]
        counts[variant] = {
            "users": len(named),
            "requests": sum(row[0] for row in users.values()),
            "errors": sum(row[1] for row in users.values()),
            "conversions": sum(1 for row in named if row[2] > 0),
        }
    return counts


def _rate(part: int, whole: int) -> float | None:
    return part / float(whole) if whole else None


def _percent(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(100.0 * value, digits)


def guard(counts: dict, control: str, max_error_rate: float | None, confidence: float) -> dict:
    """Per variant the always-valid p that its error rate is over ``max_error_rate`` (percent), and the
    variants whose errors prove it (``tripped``); no guard when ``max_error_rate`` is None."""
    if max_error_rate is None:
        return {"max_error_rate": None, "confidence": confidence, "p_values": {}, "tripped": [], "reason": ""}
    if not 0 <= max_error_rate < 100:
        raise ValueError("max_error_rate: expected a percentage from 0 up to (not including) 100, got %r"
                         % (max_error_rate,))
    if not 0.5 <= confidence < 1:
        raise ValueError("guard_confidence: expected at least 0.5 and below 1, got %r" % (confidence,))
    alpha = 1.0 - confidence
    p_values = {name: always_valid_p(row["errors"], row["requests"], max_error_rate / 100.0)
                for name, row in counts.items()}
    proved = sorted(name for name, p in p_values.items() if p < alpha and name != control)
    base = counts[control]
    if p_values[control] >= alpha:
        tripped = proved
        reasons = ["%s: %d of %d requests failed, which proves its error rate over the %s %% ceiling (sequential test, "
                   "always-valid p=%.2g < %.2g)" % (name, counts[name]["errors"], counts[name]["requests"],
                                                    _number(max_error_rate), p_values[name], alpha)
                   for name in tripped]
    else:
        # The control breaks the ceiling too (a fault they share): a variant is blamed only for failing more than
        # the control by over the ceiling's points, with significance (one-sided two-proportion z-test).
        tripped, reasons = [], []
        for name in proved:
            row = counts[name]
            difference = 100.0 * (row["errors"] / row["requests"] - base["errors"] / base["requests"])
            p_worse = two_proportion_z(row["errors"], row["requests"], base["errors"], base["requests"], "greater")[1]
            if difference > max_error_rate and p_worse < alpha:
                tripped.append(name)
                reasons.append("%s: %d of %d requests failed, %s points more than the control %s (%d of %d), which "
                               "fails too (two-proportion z-test p=%.2g < %.2g)"
                               % (name, row["errors"], row["requests"], _number(round(difference, 2)), control,
                                  base["errors"], base["requests"], p_worse, alpha))
        if not tripped:
            reasons = ["the control %s fails too (%d of %d requests) and no variant fails more than %s points over "
                       "it: a fault they share" % (control, base["errors"], base["requests"], _number(max_error_rate))]
    return {"max_error_rate": max_error_rate, "confidence": confidence, "p_values": p_values, "tripped": tripped,
            "reason": "; ".join(reasons)}


def build_report(counts: dict, control: str, confidence: float = 0.95, power: float = 0.8,
                 min_effect: float = 1.0, max_error_rate: float | None = None, guard_confidence: float = 0.99) -> dict:
    """The report for ``counts`` (see ``variant_counts``); ``min_effect`` in percentage points; with
    ``max_error_rate``, the guard rail on the variants' errors (see ``guard``)."""
    if control not in counts:
        raise ValueError("control: %r is not one of the variants seen (%s)" % (control, ", ".join(sorted(counts)) or "none"))
    if len(counts) < 2:
        raise ValueError("an A/B test needs two variants or more, the logs have %s" % (", ".join(counts) or "none"))
    if not 0.5 <= confidence < 1:
        raise ValueError("confidence: expected at least 0.5 and below 1, got %r" % (confidence,))
    if not 0 < power < 1:
        raise ValueError("power: expected above 0 and below 1, got %r" % (power,))
    if not 0 < min_effect < 100:
        raise ValueError("min_effect: expected percentage points above 0 and below 100, got %r" % (min_effect,))
    alpha = 1.0 - confidence
    order = [control] + sorted(name for name in counts if name != control)
    base = counts[control]
    base_rate = _rate(base["conversions"], base["users"])
    variants = []
    for name in order:
        row = counts[name]
        rate = _rate(row["conversions"], row["users"])
        entry = dict(row, variant=name, control=name == control, conversion_rate=_percent(rate),
                     error_rate=_percent(_rate(row["errors"], row["requests"])),
                     lift=None, lift_ci=None, relative_lift=None, relative_lift_ci=None, p_value=None)
        if name != control and row["users"] and base["users"]:
            low, high = diff_confint(row["conversions"], row["users"], base["conversions"], base["users"], confidence)
            entry.update(lift=_percent(rate - base_rate), lift_ci=[_percent(low), _percent(high)],
                         p_value=two_proportion_z(row["conversions"], row["users"], base["conversions"], base["users"],
                                                  "two-sided")[1])
            if base_rate:
                ratio = ratio_confint(row["conversions"], row["users"], base["conversions"], base["users"], confidence)
                entry.update(relative_lift=_percent(rate / base_rate - 1.0),
                             relative_lift_ci=None if ratio is None else [_percent(ratio[0] - 1.0), _percent(ratio[1] - 1.0)])
        variants.append(entry)

    needed = None
    if base_rate is not None and base_rate + min_effect / 100.0 <= 1.0:
        needed = users_for_power(proportion_effectsize(base_rate + min_effect / 100.0, base_rate), alpha, power)
    needed_users = None if needed is None or math.isinf(needed) else int(math.ceil(needed - 1e-9))
    tested = [entry for entry in variants if entry["users"]]
    test, statistic, p_value = None, None, None
    if len(tested) == len(variants):
        if len(variants) == 2:
            test = "two-proportion z"
            statistic, p_value = two_proportion_z(variants[1]["conversions"], variants[1]["users"],
                                                  base["conversions"], base["users"], "two-sided")
        else:
            test = "chi-square"
            statistic, p_value, _df = chi_square_homogeneity([entry["conversions"] for entry in variants],
                                                             [entry["users"] for entry in variants])

    enough = needed_users is not None and all(entry["users"] >= needed_users for entry in variants)
    best = max(variants, key=lambda entry: (entry["conversion_rate"] if entry["conversion_rate"] is not None else -1,
                                            entry["control"]))
    winner = None
    if not enough:
        decision = KEEP_COLLECTING
        reason = ("the control has no users yet" if needed_users is None and base_rate is None
                  else "every variant needs %s users to detect %s points at power %s; fewest so far %d"
                  % (needed_users if needed_users is not None else "more", _number(min_effect), _number(power),
                     min(entry["users"] for entry in variants)))
    elif p_value is None or p_value >= alpha:
        decision = NO_DIFFERENCE
        reason = "%s test p = %s, not below %s" % (test, _number(p_value), _number(alpha))
    elif not best["control"] and best["lift_ci"][0] > 0:
        decision, winner = WINNER, best["variant"]
        reason = "%s converts %s points better than %s (%d%% interval %s to %s), %s test p = %s" % (
            winner, _number(best["lift"]), control, round(100 * confidence), _number(best["lift_ci"][0]),
            _number(best["lift_ci"][1]), test, _number(p_value))
    elif best["control"] and all(entry["lift_ci"][1] < 0 for entry in variants if not entry["control"]):
        decision, winner = WINNER, control
        reason = "the control %s converts better than every variant, %s test p = %s" % (control, test, _number(p_value))
    else:
        decision = NO_DIFFERENCE
        reason = "%s test p = %s, but no variant is better than all the others with confidence" % (test, _number(p_value))
    rail = guard(counts, control, max_error_rate, guard_confidence)
    if rail["tripped"]:
        decision, winner = STOP, None
        reason = "stop the test, every user back to the control %s - %s" % (control, rail["reason"])
    report = {
        "control": control, "confidence": confidence, "power": power, "min_effect": min_effect,
        "variants": variants, "test": test, "statistic": statistic, "p_value": p_value,
        "users_needed_per_variant": needed_users, "decision": decision, "winner": winner, "reason": reason,
        "guard": rail,
    }
    report["table"] = format_table(report)
    return report


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.3g" % value if abs(value) < 0.001 and value != 0 else ("%.2f" % value).rstrip("0").rstrip(".")
    return str(value)


def format_table(report: dict) -> str:
    """The report for people: one row per variant, then the test and the decision."""
    head = ["variant", "users", "requests", "errors %", "conversions", "rate %", "lift pts", "CI pts",
            "rel. lift %", "p"]
    rows = [head]
    for entry in report["variants"]:
        ci = entry["lift_ci"]
        rows.append([
            entry["variant"] + (" (control)" if entry["control"] else ""), str(entry["users"]), str(entry["requests"]),
            _number(entry["error_rate"]), str(entry["conversions"]), _number(entry["conversion_rate"]),
            _number(entry["lift"]), "-" if ci is None else "%s..%s" % (_number(ci[0]), _number(ci[1])),
            _number(entry["relative_lift"]), _number(entry["p_value"]),
        ])
    widths = [max(len(row[column]) for row in rows) for column in range(len(head))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    test = report["test"] or "no test yet"
    lines.append("%s: p = %s; users needed per variant: %s"
                 % (test, _number(report["p_value"]), _number(report["users_needed_per_variant"])))
    winner = " " + report["winner"] if report["winner"] else ""
    lines.append("decision: %s%s - %s" % (report["decision"], winner, report["reason"]))
    return "\n".join(lines)
