# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An error ceiling judged while the traffic flows: a test that may look as often as it likes.

A step's fixed-sample test (``_canary_analysis.judge``) holds its false-fail rate only when it is
looked at once, at the end of the window. Looked at every few seconds, with the step stopped at the
first significant look, each look is one more chance to fail a good release: twenty looks of a
binomial test at 2 % fail a release that sits right at its ceiling about 1 time in 10. The test here
stays within its bound however many looks are taken, whenever they are taken.

The math (a mixture sequential probability ratio test). Each request is a trial that errs with
probability p; the release is within its ceiling when p <= p0. For one alternative p1 > p0, the
likelihood ratio after n requests with x errors

    L(p1) = (p1 / p0) ** x * ((1 - p1) / (1 - p0)) ** (n - x)

gains, with each request, a factor whose expectation is p * p1 / p0 + (1 - p) * (1 - p1) / (1 - p0):
1 when p = p0 and less when p < p0 (it grows with p as p1 > p0). So L(p1) is a nonnegative
supermartingale starting at 1 whenever the release is within its ceiling, and so is any weighted
average of such ratios, ``evidence`` = sum of w_i * L(p_i) with the weights summing to 1. Ville's
inequality then bounds the chance that the evidence ever reaches 1 / alpha by alpha: stopping at the
first look where it does fails a release within its ceiling with probability at most alpha, for any
number and timing of looks.

The alternatives are the errors one wants caught, from a little over the ceiling to a release failing
most requests: their odds are the ceiling's times 2, 4, 8, ..., up to the first error rate of 60 % or
more, with equal weights. Each alternative more dilutes the others' weight, so the grid stops where a
larger one would catch nothing the last does not: a release failing 90 % of its requests proves
itself within a few requests against 60 % too. One just over the ceiling needs more requests, as it
would with any test.
"""

from __future__ import annotations

import math

MAX_ALTERNATIVE = 0.999
# The grid of alternatives ends at the first error rate at or over this.
TOP_ALTERNATIVE = 0.6


def alternatives(ceiling: float) -> list[float]:
    """The error rates (probabilities) the evidence weighs against ``ceiling`` (a probability)."""
    _check_probability("ceiling", ceiling)
    if ceiling <= 0.0 or ceiling >= MAX_ALTERNATIVE:
        return []
    odds = ceiling / (1.0 - ceiling)
    rates = []
    factor = 2.0
    while not rates or rates[-1] < TOP_ALTERNATIVE:
        rates.append(min(MAX_ALTERNATIVE, odds * factor / (1.0 + odds * factor)))
        factor *= 2.0
    return rates


def log_evidence(errors: int, requests: int, ceiling: float) -> float:
    """The natural log of the evidence that the error rate is over ``ceiling`` (a probability), after
    ``errors`` of ``requests`` failed: 0 before any request; infinite when the ceiling is 0 and a
    request failed; minus infinity from a ceiling of 99.9 % up (nothing is judged over it)."""
    _check_counts(errors, requests)
    _check_probability("ceiling", ceiling)
    if ceiling >= MAX_ALTERNATIVE:
        return 0.0 if requests == 0 else -math.inf
    if ceiling <= 0.0:
        return math.inf if errors else 0.0
    rates = alternatives(ceiling)
    terms = [errors * math.log(rate / ceiling) + (requests - errors) * math.log((1.0 - rate) / (1.0 - ceiling))
             for rate in rates]
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms) / len(terms))


def ceiling_broken(errors: int, requests: int, ceiling: float, alpha: float) -> bool:
    """Whether ``errors`` of ``requests`` show, at a false-fail rate of at most ``alpha`` over any number of
    looks, that the error rate is over ``ceiling`` (both probabilities)."""
    _check_probability("alpha", alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha: expected a probability between 0 and 1 (not included), got %r" % alpha)
    return log_evidence(errors, requests, ceiling) >= -math.log(alpha)


def always_valid_p(errors: int, requests: int, ceiling: float) -> float:
    """1 / evidence (at most 1): below alpha exactly when ``ceiling_broken`` says so, and reported as the
    look's p-value."""
    value = log_evidence(errors, requests, ceiling)
    return 1.0 if value <= 0.0 else math.exp(-value)


def _check_counts(errors: int, requests: int) -> None:
    if requests < 0 or not 0 <= errors <= requests:
        raise ValueError("expected 0 <= errors <= requests, got %r errors of %r requests" % (errors, requests))


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError("%s: expected a probability from 0 to 1, got %r" % (name, value))
