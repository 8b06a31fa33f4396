"""Our statistics against SciPy's on many generated samples, ties included: equal to 1e-6.

SciPy is a test-only dependency (tests/unit/requirements.txt); the collection never needs it.
"""

from __future__ import annotations

import random

import numpy
import pytest
from scipy import stats as scipy_stats

from ansible_collections.fleet.rollout.plugins.module_utils import _statistics as st

TOLERANCE = 1e-6


def close(ours, theirs):
    return ours == pytest.approx(float(theirs), rel=TOLERANCE, abs=TOLERANCE)


def latency_samples(rng: random.Random, n: int, shift: float, ties: bool) -> list[float]:
    """Latency-like data: log-normal, sometimes rounded to milliseconds (as LB logs are), so ties are many."""
    values = [rng.lognormvariate(-3.0, 0.6) + shift for _index in range(n)]
    return [round(v, 3) for v in values] if ties else values


def generated_pairs(count: int, seed: int):
    rng = random.Random(seed)
    for case in range(count):
        n1 = rng.choice([1, 2, 3, 5, 7, 8, 12, 30, 100, 400])
        n2 = rng.choice([1, 2, 4, 7, 9, 25, 60, 250, 1000])
        shift = rng.choice([0.0, 0.0, 0.002, 0.01, 0.3])
        ties = case % 3 != 0
        yield latency_samples(rng, n1, shift, ties), latency_samples(rng, n2, 0.0, ties)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_asymptotic_matches_scipy(alternative):
    for x, y in generated_pairs(150, seed=7):
        u, p = st.mann_whitney_u(x, y, alternative=alternative, method="asymptotic")
        ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")
        assert close(u, ref.statistic), (x, y)
        assert close(p, ref.pvalue), (len(x), len(y), p, ref.pvalue)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_without_continuity_matches_scipy(alternative):
    for x, y in generated_pairs(60, seed=11):
        _u, p = st.mann_whitney_u(x, y, alternative=alternative, method="asymptotic", continuity=False)
        ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic", use_continuity=False)
        assert close(p, ref.pvalue)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_exact_matches_scipy(alternative):
    rng = random.Random(3)
    for _index in range(200):
        n1, n2 = rng.randint(1, 12), rng.randint(1, 40)
        x = [rng.random() + rng.choice([0, 0.3]) for _index in range(n1)]
        y = [rng.random() for _index in range(n2)]
        u, p = st.mann_whitney_u(x, y, alternative=alternative, method="exact")
        ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="exact")
        assert close(u, ref.statistic) and close(p, ref.pvalue), (n1, n2, p, ref.pvalue)


def test_mann_whitney_exact_refuses_ties():
    with pytest.raises(ValueError, match="method exact assumes no tied values"):
        st.mann_whitney_u([1.0, 2.0, 2.0], [2.0, 3.0], method="exact")
    # auto goes asymptotic on the same samples, as SciPy does.
    _u, p = st.mann_whitney_u([1.0, 2.0, 2.0], [2.0, 3.0])
    assert close(p, scipy_stats.mannwhitneyu([1.0, 2.0, 2.0], [2.0, 3.0], method="auto").pvalue)


def test_mann_whitney_auto_picks_like_scipy():
    for x, y in generated_pairs(150, seed=5):
        for alternative in ("two-sided", "greater"):
            _u, p = st.mann_whitney_u(x, y, alternative=alternative)
            ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="auto")
            assert close(p, ref.pvalue), (len(x), len(y))


def test_mann_whitney_when_every_value_is_the_same():
    u, p = st.mann_whitney_u([0.1] * 20, [0.1] * 30, alternative="greater")
    assert u == 300 and p == 1.0


def test_mann_whitney_bad_input():
    with pytest.raises(ValueError, match="alternative"):
        st.mann_whitney_u([1], [2], alternative="bigger")
    with pytest.raises(ValueError, match="at least one value"):
        st.mann_whitney_u([], [2])


def test_average_ranks_match_scipy_rankdata():
    rng = random.Random(1)
    for _index in range(50):
        values = [rng.randint(0, 20) for _index in range(rng.randint(1, 200))]
        ranks, ties = st.average_ranks(values)
        assert ranks == pytest.approx(list(scipy_stats.rankdata(values)))
        assert sum(ties) == len(values)


def test_two_proportion_z_matches_scipy_chi_square():
    rng = random.Random(9)
    for _index in range(300):
        total_a, total_b = rng.randint(5, 5000), rng.randint(5, 5000)
        errors_a, errors_b = rng.randint(1, total_a - 1), rng.randint(0, total_b)
        z, p_two = st.two_proportion_z(errors_a, total_a, errors_b, total_b, alternative="two-sided")
        chi2, p_ref, _dof, _expected = scipy_stats.chi2_contingency(
            [[errors_a, total_a - errors_a], [errors_b, total_b - errors_b]], correction=False)
        assert close(z * z, chi2) and close(p_two, p_ref)
        _z, p_greater = st.two_proportion_z(errors_a, total_a, errors_b, total_b)
        assert close(p_greater, scipy_stats.norm.sf(z))
        if z > 0:
            assert close(p_greater, p_ref / 2)


def test_two_proportion_z_without_variance_and_bad_input():
    assert st.two_proportion_z(0, 100, 0, 2000) == (0.0, 1.0)
    assert st.two_proportion_z(100, 100, 50, 50) == (0.0, 1.0)
    with pytest.raises(ValueError, match="errors <= total"):
        st.two_proportion_z(5, 4, 0, 10)
    with pytest.raises(ValueError, match="total > 0"):
        st.two_proportion_z(0, 0, 0, 10)


def test_percentiles_match_numpy():
    rng = random.Random(2)
    for _index in range(100):
        values = latency_samples(rng, rng.randint(1, 500), 0.0, ties=rng.random() < 0.5)
        for q in (0, 1, 50, 90, 95, 99, 99.9, 100):
            assert close(st.percentile(values, q), numpy.percentile(values, q))
    assert st.percentile([], 50) is None
    with pytest.raises(ValueError, match="between 0 and 100"):
        st.percentile([1.0], 101)


def test_normal_tail_is_accurate_far_out():
    for z in (-8.0, -1.0, 0.0, 1.5, 6.0, 12.0, 30.0):
        assert st.normal_sf(z) == pytest.approx(float(scipy_stats.norm.sf(z)), rel=1e-9, abs=0)


def test_binomial_tail_matches_scipy():
    rng = random.Random(11)
    for _index in range(300):
        n = rng.choice([0, 1, 2, 5, 10, 30, 49, 200, 3000])
        k = rng.randint(0, n + 1)
        p = rng.choice([0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 0.99, 1.0])
        assert close(st.binomial_sf(k, n, p), scipy_stats.binom.sf(k - 1, n, p)), (k, n, p)
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        st.binomial_sf(1, 10, 1.5)
