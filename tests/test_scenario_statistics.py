"""Scenario statistics on hand-built records, where the answer is known by construction."""

import numpy as np

from validate.scenarios.oscillatory_spiral import _episodes


def _records(episodes, gap=4):
    """Accuracy and top-3 Hessian records with one λ_1 up-crossing of 2 per episode.

    `episodes`: (λ_1 peak, λ_2 peak, λ_3 peak, bifurcation) per episode; a bifurcation is a jump of
    0.1 in accuracy at the record after the crossing."""
    acc, top = [0.5], [[1.0, 0.5, 0.2]]
    for l1, l2, l3, bif in episodes:
        acc += [acc[-1]] * gap
        top += [[1.0, 0.5, 0.2]] * gap
        acc += [acc[-1], acc[-1] + (0.1 if bif else 0.0)]
        top += [[l1, l2, l3], [1.0, 0.5, 0.2]]
    return np.array(acc), np.array(top)


def test_episodes_split_bifurcations_by_the_second_eigenvalue():
    # λ_2 crosses in 2 episodes (both bifurcate); of the 3 with λ_1 alone, 1 bifurcates
    acc, top = _records([(2.5, 2.2, 1.0, True), (2.4, 1.0, 1.0, False), (2.3, 2.1, 2.5, True),
                         (3.0, 1.5, 1.0, True), (2.9, 1.0, 1.0, False)])  # fmt: skip
    e = _episodes(acc, top, 2.0)
    assert e["episodes"] == 5 and e["second"] == 2 and e["third"] == 1
    assert e["p_second"] == 1.0 and np.isclose(e["p_first_only"], 1 / 3)
    assert np.isclose(e["second_gain"], 2 / 3)
    # rival: the 2 largest λ_1 peaks (3.0: bifurcates, 2.9: does not) against the other 3 (2 of 3)
    assert np.isclose(e["first_gain"], 0.5 - 2 / 3)
    # λ_3 crosses once, in an episode that bifurcates; 2 of the other 4 bifurcate
    assert np.isclose(e["third_gain"], 1.0 - 2 / 4)


def test_episodes_without_a_split_are_undefined_not_zero():
    acc, top = _records([(2.5, 1.0, 1.0, True), (2.4, 1.0, 1.0, False)])
    e = _episodes(acc, top, 2.0)
    assert e["second"] == 0 and np.isnan(e["second_gain"]) and np.isnan(e["third_gain"])
    # a jump away from any crossing is not an episode's bifurcation
    acc[2:] += 0.3
    again = _episodes(acc, top, 2.0)
    assert again["episodes"] == 2 and again["p_first_only"] == 0.5 and np.isnan(again["second_gain"])


def test_the_rival_split_is_undefined_when_it_picks_the_same_episodes():
    # λ_2 crosses exactly in the two episodes with the largest λ_1 peaks
    acc, top = _records([(3.0, 2.5, 1.0, True), (2.9, 2.2, 1.0, True), (2.4, 1.0, 1.0, False)])
    e = _episodes(acc, top, 2.0)
    assert np.isclose(e["second_gain"], 1.0) and np.isnan(e["first_gain"])


def test_sgd_spike_statistics_measure_each_kernel_drop_against_quiet_windows():
    """catapult_sgd: a hand-built record with one late spike at a super-critical batch, after which
    λ_max and tr K fall by known factors; elsewhere both drift up slowly."""
    from validate.scenarios.catapult_sgd import _WINDOW, _spike_statistics

    steps, onset = 200, 120
    loss = np.full(steps, 1.0)
    loss[onset + 1 : onset + 4] = [4.0, 5.0, 2.0]  # the loss quadruples in one step: a spike
    drift = np.exp(1e-3 * np.arange(steps))  # quiet growth, +0.006 in log over a window
    lam = 30.0 * drift
    lam[onset + 2 :] *= np.exp(-0.2)
    trace = 500.0 * drift**2  # drifts twice as fast: its null is its own
    trace[onset + 2 :] *= np.exp(-0.1)
    top = 0.9 * loss
    kern = np.stack([top, loss - top, lam, trace], axis=1)
    crit = np.full(steps, 2.0)
    crit[onset] = 0.5  # the spike's batch is super-critical for η = 1
    out = _spike_statistics(loss, crit, kern, eta=1.0, burn_in=50)
    assert out["late_spikes"] == 1 and out["matched"] == 1.0 and out["base_rate"] == 1 / (steps - 1 - _WINDOW - 50)
    np.testing.assert_allclose(out["kernel_drop"], -0.2 + _WINDOW * 1e-3, rtol=1e-9)
    np.testing.assert_allclose(out["trace_drop"], -0.1 + _WINDOW * 2e-3, rtol=1e-9)
    np.testing.assert_allclose([out["kernel_null"], out["trace_null"]], [_WINDOW * 1e-3, _WINDOW * 2e-3], rtol=1e-9)
    np.testing.assert_allclose(out["trace_drop_minus_null"], -0.1, rtol=1e-9)
    np.testing.assert_allclose(out["top_share"], 0.9, rtol=1e-12)


def test_cross_entropy_width_rate_is_inconclusive_with_one_width_and_checked_with_several():
    from validate.scenarios.l2_cross_entropy import _width_rate

    one = _width_rate((2048,), np.array([[0.1], [0.2]]), "undefined")
    assert one.verdict == "INCONCLUSIVE" and "one width" in one.inconclusive
    rng = np.random.default_rng(0)
    for widths in ((1024, 2048), (256, 1024, 4096)):
        errors = np.array([[w**-1.0 * np.exp(0.01 * rng.normal()) for w in widths] for _ in range(5)])
        rate = _width_rate(widths, errors, "undefined")
        assert rate.verdict == "pass" and abs(rate.value + 1) < 0.05, widths
        steeper = _width_rate(widths, errors * np.asarray(widths, float) ** -1.0, "undefined")  # slope -2
        assert steeper.verdict == "FAIL", widths
