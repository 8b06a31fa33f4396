# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statistics a canary is judged by, in the standard library only.

No SciPy or NumPy on managed nodes or the controller at run time; the unit tests compare
every function here with SciPy on generated samples, ties included. The definitions follow
SciPy's so that the numbers match it:

- ``percentile``: linear interpolation between closest ranks (NumPy's default).
- ``mann_whitney_u``: ``scipy.stats.mannwhitneyu`` - U of the first sample, average ranks for
  ties, the exact distribution or the normal approximation with tie correction and continuity
  correction.
- ``binomial_sf``: ``scipy.stats.binom.sf(k - 1, n, p)``, the chance of at least k failures.
- ``two_proportion_z``: the pooled two-proportion z-test, whose square is the chi-square
  statistic of the 2x2 table (``scipy.stats.chi2_contingency`` without Yates' correction).
"""

from __future__ import annotations

import math
import statistics

ALTERNATIVES = ("two-sided", "greater", "less")
# SciPy's "auto" choice: the exact distribution while a sample has at most this many values and there
# are no ties.
EXACT_UP_TO = 8


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate in the far tail too (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; ``None`` for no values."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError("percentile: q must be between 0 and 100, got %r" % q)
    position = (len(data) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(data) - 1)
    fraction = position - low
    return data[low] + (data[high] - data[low]) * fraction


def average_ranks(values) -> tuple[list[float], list[int]]:
    """Ranks from 1 (ties get the mean of their ranks) in input order, and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end + 2) / 2.0
        for index in order[start:end + 1]:
            ranks[index] = rank
        ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


def mann_whitney_u(x, y, alternative: str = "two-sided", method: str = "auto",
                   continuity: bool = True) -> tuple[float, float]:
    """(U of ``x``, p-value) as ``scipy.stats.mannwhitneyu(x, y, ...)`` gives them.

    ``alternative="greater"`` tests whether ``x`` tends to be larger than ``y``. ``method`` is
    ``exact``, ``asymptotic`` or ``auto`` (exact when a sample has at most 8 values and there
    are no ties). ``exact`` with tied values is a ValueError: the exact distribution here assumes
    none, and SciPy's answer for ties differs from it by up to 0.4.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError("alternative: expected one of %s, got %r" % (", ".join(ALTERNATIVES), alternative))
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError("method: expected auto, exact or asymptotic, got %r" % method)
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("mann_whitney_u: both samples need at least one value")
    ranks, ties = average_ranks(list(x) + list(y))
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1.0
    elif alternative == "less":
        u, factor = u2, 1.0
    else:
        u, factor = max(u1, u2), 2.0
    has_ties = any(size > 1 for size in ties)
    if method == "auto":
        method = "exact" if min(n1, n2) <= EXACT_UP_TO and not has_ties else "asymptotic"
    if method == "exact" and has_ties:
        raise ValueError("mann_whitney_u: method exact assumes no tied values and the samples have some; "
                         "use asymptotic (with its tie correction) or auto")
    if method == "exact":
        p = _exact_sf(int(round(u)), n1, n2)
    else:
        n = n1 + n2
        tie_term = sum(t ** 3 - t for t in ties)
        variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
        if variance <= 0:
            p = 1.0  # every value the same: no evidence either way
        else:
            numerator = u - n1 * n2 / 2.0 - (0.5 if continuity else 0.0)
            p = normal_sf(numerator / math.sqrt(variance))
    return u1, min(max(p * factor, 0.0), 1.0)


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) under the null for samples of n1 and n2 without ties.

    The counts of U are the coefficients of the Gaussian binomial (n1+n2 choose n1) in q:
    prod over i = 1..m of (1 - q^(k+i)) / (1 - q^i), with m the smaller and k the larger size,
    so each factor costs one pass over the m*k+1 coefficients.
    """
    m, k = min(n1, n2), max(n1, n2)
    size = m * k + 1
    counts = [0] * size
    counts[0] = 1
    for i in range(1, m + 1):
        step = k + i
        for j in range(size - 1, step - 1, -1):
            counts[j] -= counts[j - step]
        for j in range(i, size):
            counts[j] += counts[j - i]
    total = math.comb(n1 + n2, n1)
    if u <= 0:
        return 1.0
    if u >= size:
        return 0.0
    return sum(counts[u:]) / total


def two_proportion_z(errors_a: int, total_a: int, errors_b: int, total_b: int,
                     alternative: str = "greater") -> tuple[float, float]:
    """(z, p-value) of the pooled two-proportion z-test of rate a against rate b.

    ``alternative="greater"`` tests whether a's rate is higher than b's. With no failure or no
    success at all on both sides there is no variance: z is 0 and p is 1.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError("alternative: expected one of %s, got %r" % (", ".join(ALTERNATIVES), alternative))
    for name, errors, total in (("a", errors_a, total_a), ("b", errors_b, total_b)):
        if total <= 0 or not 0 <= errors <= total:
            raise ValueError("two_proportion_z: sample %s needs 0 <= errors <= total and total > 0, got %r of %r"
                             % (name, errors, total))
    pooled = (errors_a + errors_b) / float(total_a + total_b)
    variance = pooled * (1.0 - pooled) * (1.0 / total_a + 1.0 / total_b)
    if variance <= 0:
        return 0.0, 1.0
    z = (errors_a / float(total_a) - errors_b / float(total_b)) / math.sqrt(variance)
    if alternative == "greater":
        p = normal_sf(z)
    elif alternative == "less":
        p = normal_sf(-z)
    else:
        p = min(2.0 * normal_sf(abs(z)), 1.0)
    return z, p


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the chance of at least ``k`` failures in ``n`` tries.

    Summed term by term in log space, so it stays exact for the few hundred tries a canary's
    early window has and does not overflow for larger ``n``.
    """
    if n < 0 or not 0 <= p <= 1:
        raise ValueError("binomial_sf: expected n >= 0 and 0 <= p <= 1, got n=%r, p=%r" % (n, p))
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p in (0.0, 1.0):
        return float(p == 1.0)
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
    return min(total, 1.0)


# --- A/B tests: conversion rates (statsmodels' definitions) ----------------------------------------

def normal_isf(p: float) -> float:
    """The z with P(Z > z) = p (SciPy's ``norm.isf``)."""
    if not 0 < p < 1:
        raise ValueError("normal_isf: p must be between 0 and 1, got %r" % (p,))
    return -statistics.NormalDist().inv_cdf(p)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi-square(df): the regularized upper incomplete gamma Q(df/2, x/2), by its
    series below a+1 and its continued fraction above (Numerical Recipes), to double precision."""
    if df <= 0:
        raise ValueError("chi2_sf: df must be positive, got %r" % (df,))
    if x <= 0:
        return 1.0
    a, y = df / 2.0, x / 2.0
    log_front = a * math.log(y) - y - math.lgamma(a)
    if y < a + 1.0:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-17:
            n += 1.0
            term *= y / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = y + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    i = 1
    while True:
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16 or i > 10000:
            break
        i += 1
    return math.exp(log_front) * h


def chi_square_homogeneity(successes, totals) -> tuple[float, float, int]:
    """(chi2, p-value, degrees of freedom) of the test that k proportions are equal: the 2 x k table's
    Pearson statistic without continuity correction (statsmodels' ``proportions_chisquare``)."""
    if len(successes) != len(totals) or len(totals) < 2:
        raise ValueError("chi_square_homogeneity: expected two or more groups, as many successes as totals")
    for success, total in zip(successes, totals):
        if total <= 0 or not 0 <= success <= total:
            raise ValueError("chi_square_homogeneity: each group needs 0 <= successes <= total and total > 0, "
                             "got %r of %r" % (success, total))
    pooled = float(sum(successes)) / sum(totals)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0, len(totals) - 1
    statistic = 0.0
    for success, total in zip(successes, totals):
        for observed, expected in ((success, total * pooled), (total - success, total * (1.0 - pooled))):
            statistic += (observed - expected) ** 2 / expected
    return statistic, chi2_sf(statistic, len(totals) - 1), len(totals) - 1


def diff_confint(success_a: int, total_a: int, success_b: int, total_b: int,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Wald interval of rate a minus rate b (statsmodels' ``confint_proportions_2indep``, method wald)."""
    rate_a, rate_b = success_a / float(total_a), success_b / float(total_b)
    spread = normal_isf((1.0 - confidence) / 2.0) * math.sqrt(
        rate_a * (1.0 - rate_a) / total_a + rate_b * (1.0 - rate_b) / total_b)
    return rate_a - rate_b - spread, rate_a - rate_b + spread


def ratio_confint(success_a: int, total_a: int, success_b: int, total_b: int,
                  confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval of rate a over rate b on the log scale (statsmodels' ``confint_proportions_2indep``,
    compare ratio, method log); ``None`` without a success on either side."""
    if success_a <= 0 or success_b <= 0:
        return None
    ratio = (success_a / float(total_a)) / (success_b / float(total_b))
    spread = normal_isf((1.0 - confidence) / 2.0) * math.sqrt(
        1.0 / success_a - 1.0 / total_a + 1.0 / success_b - 1.0 / total_b)
    return ratio * math.exp(-spread), ratio * math.exp(spread)


def proportion_effectsize(rate_a: float, rate_b: float) -> float:
    """Cohen's h of two rates (statsmodels' ``proportion_effectsize``)."""
    return 2.0 * math.asin(math.sqrt(rate_a)) - 2.0 * math.asin(math.sqrt(rate_b))


def normal_ind_power(effect: float, users: float, alpha: float = 0.05) -> float:
    """Power of the two-sided test of two equal groups of ``users`` each (statsmodels' ``NormalIndPower``,
    ratio 1)."""
    critical = normal_isf(alpha / 2.0)
    shift = effect * math.sqrt(users / 2.0)
    return normal_sf(critical - shift) + 1.0 - normal_sf(-critical - shift)


def users_for_power(effect: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The users per group that reach ``power`` for ``effect`` (Cohen's h): ``NormalIndPower().solve_power``
    for nobs1, solved by bisection to 1e-10; ``inf`` for no effect."""
    if effect == 0:
        return math.inf
    if not 0 < alpha < 1 or not alpha < power < 1:
        raise ValueError("users_for_power: expected 0 < alpha < power < 1, got alpha=%r, power=%r" % (alpha, power))
    low, high = 1e-6, 2.0
    while normal_ind_power(effect, high, alpha) < power:
        high *= 2.0
    while high - low > 1e-10 * high:
        middle = (low + high) / 2.0
        if normal_ind_power(effect, middle, alpha) < power:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0
