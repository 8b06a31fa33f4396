# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary traffic steps as LB weights."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

FULL = 100


def canary_weights(canary, stable, percent) -> dict:
    """Weights (percent of a full weight, 0-100) that send ``percent`` of the requests to ``canary``.

    Balancing is weighted round robin on both LBs, so the canary's share is its hosts' weight over
    all the weight. Weights are integers 1-100 (0 only at steps 0 and 100), chosen so that the share
    is as near the step as such weights allow. Returns ``{"weights": {host: weight}, "share": percent}``
    where ``share`` is the share those integer weights give.
    """
    canary, stable = list(canary), list(stable)
    if isinstance(percent, bool):
        raise AnsibleFilterError("canary_weights: expected a percentage 0-100, got %r" % (percent,))
    try:
        step = float(percent)
    except (TypeError, ValueError):
        raise AnsibleFilterError("canary_weights: expected a percentage 0-100, got %r" % (percent,)) from None
    if not 0 <= step <= 100:
        raise AnsibleFilterError("canary_weights: expected a percentage 0-100, got %r" % (percent,))
    if not canary:
        raise AnsibleFilterError("canary_weights: no canary hosts")
    overlap = sorted(set(canary) & set(stable))
    if overlap:
        raise AnsibleFilterError("canary_weights: %s both canary and stable" % ", ".join(overlap))
    if step == 0 or not stable and step < 100:
        canary_weight, stable_weight = (0, FULL) if stable else (FULL, FULL)
    elif step == 100 or not stable:
        canary_weight, stable_weight = FULL, 0
    else:
        # share = c*wc / (c*wc + s*ws)  =>  wc = ws * share/(1-share) * s/c; try every ws and keep the
        # pair whose share is nearest (ties: the larger weights, finer for slow starts and drains).
        ratio = step / (100.0 - step) * len(stable) / len(canary)
        best = None
        for candidate in range(1, FULL + 1):
            weight = max(1, min(FULL, int(round(candidate * ratio))))
            share = 100.0 * weight * len(canary) / (weight * len(canary) + candidate * len(stable))
            key = (round(abs(share - step), 9), -(weight + candidate))
            if best is None or key < best[0]:
                best = (key, weight, candidate)
        canary_weight, stable_weight = best[1], best[2]
    weights = dict((host, canary_weight) for host in canary)
    weights.update((host, stable_weight) for host in stable)
    total = canary_weight * len(canary) + stable_weight * len(stable)
    share = 100.0 * canary_weight * len(canary) / total if total else 0.0
    return {"weights": weights, "share": round(share, 2)}


class FilterModule:
    def filters(self):
        return {"canary_weights": canary_weights}
