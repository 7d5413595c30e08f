import math
import time

import dp_accounting
import mpmath
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from scipy.special import ndtr

from mechanisms.accounting.modelmix import (
    DEFAULT_ORDERS,
    modelmix_epsilon,
    modelmix_rdp,
    shifted_uniform_gaussian_renyi,
)
from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilon_and_order, epsilons_from_rdp

# seed-methods.md section 3: CIFAR-10, n = 50,000, batch 1,500, c = 20, T = 3,400, z = 0.335,
# tau / eta = 0.15, delta = 1e-5 (the authors' 1 / (2n)).
REFERENCE = {
    "sampling_rate": 0.03,
    "noise_multiplier": 0.335,
    "clip": 20.0,
    "tau_over_lr": 0.15,
    "expected_batch_size": 1500,
}
STEPS = 3400
DELTA = 1e-5


def reference_epsilon(p, bound="tight", **changes):
    return modelmix_epsilon(
        steps=STEPS, delta=DELTA, coordinate_clip_p=p, bound=bound, **{**REFERENCE, **changes}
    )


def test_reproduces_the_paper_with_the_coordinate_clamp():
    epsilon, order = reference_epsilon(100)
    assert epsilon == pytest.approx(8.0, abs=1e-3)  # 7.99997
    assert order == 4


def test_reproduces_the_paper_without_the_clamp_within_its_grid_error():
    # 450.48 here against the paper's 447: its +-8 sigma grid truncates the integrand (next test).
    epsilon, order = reference_epsilon(1)
    assert epsilon == pytest.approx(450.48, abs=0.01)
    assert epsilon == pytest.approx(447, abs=5)
    assert order == 2


def test_divergence_matches_high_precision_quadrature_where_the_reference_grid_falls_short():
    # p = 1 reference pair in units of sigma: s = 1 / z, w = (tau / eta) B / (z c).
    z = REFERENCE["noise_multiplier"]
    s = 1 / z
    w = REFERENCE["tau_over_lr"] * REFERENCE["expected_batch_size"] / (z * REFERENCE["clip"])
    mpmath.mp.dps = 40

    def density(x):
        x = -abs(x)  # even: take both CDFs in the lower tail, where 40 digits do not cancel
        return (mpmath.ncdf(x + w / 2) - mpmath.ncdf(x - w / 2)) / w

    def exact(k):
        def integrand(x):
            return density(x - s) ** k / density(x) ** (k - 1)

        points = [-w / 2 - 20, -w / 2, w / 2, w / 2 + k * s, w / 2 + k * s + 20]
        return float(mpmath.log(mpmath.quad(integrand, points)) / (k - 1))

    ours = shifted_uniform_gaussian_renyi([2, 3], sigma=1.0, shift=s, width=w)
    np.testing.assert_allclose(ours, [exact(2), exact(3)], rtol=1e-10)

    # The reference grid (+-8 sigma beyond the uniform, step sigma / 25) misses the tail mass,
    # which lies near w/2 + k s: it understates D_2 (5.030 vs 5.038) and hence epsilon.
    x = np.arange(-8 - w / 2, w / 2 + 8 + 1 / 50, 1 / 25)
    grid_density = (ndtr(-abs(x) + w / 2) - ndtr(-abs(x) - w / 2)) / w
    shifted = (ndtr(-abs(x - s) + w / 2) - ndtr(-abs(x - s) - w / 2)) / w
    truncated = math.log(np.sum(shifted**2 / grid_density) / 25)
    assert ours[0] - truncated == pytest.approx(0.0077, abs=5e-4)


def test_general_bound_at_the_reference_settings():
    # Zhu & Wang's factor 3 on the j >= 3 terms: +15% at p = 100 (optimum at order 4), nothing at
    # p = 1 (optimum at order 2, where only j <= 2 terms appear).
    general, order = reference_epsilon(100, bound="general")
    assert general == pytest.approx(9.204, abs=1e-3)
    assert order == 4
    assert reference_epsilon(1, bound="general")[0] == pytest.approx(450.48, abs=0.01)


@pytest.mark.parametrize(
    ("p", "bound", "expected", "expected_order"),
    [(100, "tight", 7.250, 4), (100, "general", 8.269, 3), (1, "tight", 449.093, 2)],
)
def test_ledger_conversion_of_the_same_curve_is_tighter(p, bound, expected, expected_order):
    rdp = modelmix_rdp(DEFAULT_ORDERS, coordinate_clip_p=p, bound=bound, **REFERENCE)
    epsilon, order = epsilons_from_rdp(DEFAULT_ORDERS, STEPS * rdp, DELTA)
    assert float(epsilon) == pytest.approx(expected, abs=1e-3)
    assert order == expected_order
    assert float(epsilon) < reference_epsilon(p, bound=bound)[0]
    # As an RdpCurve on the ledger's own orders: same answer (the optimum is an integer order).
    curve = RdpCurve(DEFAULT_ORDERS, rdp)
    assert epsilon_and_order(RDP_ORDERS, STEPS * curve.at(RDP_ORDERS), DELTA) == pytest.approx(
        (float(epsilon), order)
    )


@pytest.mark.parametrize(("rate", "noise_multiplier"), [(0.01, 1.0), (0.2, 0.7), (0.03, 0.335)])
@pytest.mark.parametrize("width_over_sigma", [0.0, 1e-3])
def test_gaussian_limit_matches_dp_accounting(rate, noise_multiplier, width_over_sigma):
    # p = 1 and w -> 0 is the Poisson-subsampled Gaussian with multiplier z, whose integer-order
    # RDP dp_accounting computes exactly. w = 0 tests the grid alone (error ~1e-12);
    # w / sigma = 1e-3 goes through the uniform's density, which lowers the RDP by a relative 3e-6
    # at most here.
    orders = (*range(2, 65), 128, 256)
    clip, batch = 3.0, 100.0
    tau_over_lr = width_over_sigma * noise_multiplier * clip / batch
    ours = modelmix_rdp(
        orders,
        sampling_rate=rate,
        noise_multiplier=noise_multiplier,
        clip=clip,
        tau_over_lr=tau_over_lr,
        coordinate_clip_p=1,
        expected_batch_size=batch,
        bound="tight",
    )
    accountant = rdp_privacy_accountant.RdpAccountant(list(orders))
    accountant.compose(
        dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    )
    np.testing.assert_allclose(ours, accountant._rdp, rtol=1e-9 if width_over_sigma == 0 else 1e-5)
    assert np.all(ours <= accountant._rdp * (1 + 1e-12))


def test_unsampled_divergence_is_the_gaussian_one_without_the_uniform():
    ks = np.arange(2, 257)
    ours = shifted_uniform_gaussian_renyi(ks, sigma=2.0, shift=5.0, width=0.0)
    np.testing.assert_allclose(ours, ks * 5.0**2 / (2 * 2.0**2), rtol=1e-12)


def test_divergence_is_scale_invariant_and_below_the_gaussian():
    ks = np.arange(2, 40)
    small = shifted_uniform_gaussian_renyi(ks, sigma=0.01, shift=0.003, width=0.2)
    large = shifted_uniform_gaussian_renyi(ks, sigma=10.0, shift=3.0, width=200.0)
    np.testing.assert_allclose(small, large, rtol=1e-10)
    assert np.all(small < ks * 0.3**2 / 2)
    assert np.all(np.diff(small) > 0)


def test_only_the_ratios_matter():
    # Scaling clip and tau / eta together (or the batch the other way) changes nothing.
    base = reference_epsilon(100)
    assert reference_epsilon(100, clip=2.0, tau_over_lr=0.015) == pytest.approx(base, rel=1e-10)
    assert reference_epsilon(100, tau_over_lr=0.3, expected_batch_size=750) == pytest.approx(
        base, rel=1e-10
    )


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("noise_multiplier", [0.3, 0.335, 0.4, 0.6]),
        ("tau_over_lr", [0.0, 0.05, 0.15, 0.3]),
    ],
)
def test_more_noise_gives_smaller_epsilon(name, values):
    epsilons = [reference_epsilon(100, **{name: value})[0] for value in values]
    assert np.all(np.diff(epsilons) < 0), epsilons


def test_finer_coordinate_clamp_gives_smaller_epsilon():
    epsilons = [reference_epsilon(p)[0] for p in (1, 4, 25, 100, 400)]
    assert np.all(np.diff(epsilons) < 0), epsilons


def test_without_the_uniform_it_is_dp_sgd():
    # w = 0 leaves the subsampled Gaussian, whose l2 sensitivity c does not depend on p.
    assert reference_epsilon(1, tau_over_lr=0.0) == pytest.approx(
        reference_epsilon(100, tau_over_lr=0.0), rel=1e-9
    )


@pytest.mark.parametrize("p", [100, 1])
def test_reference_setting_is_fast(p):
    start = time.perf_counter()
    rdp = modelmix_rdp(DEFAULT_ORDERS, coordinate_clip_p=p, **REFERENCE)
    assert time.perf_counter() - start < 2.0
    assert rdp.shape == (len(DEFAULT_ORDERS),)
    assert np.all(np.isfinite(rdp))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sampling_rate": 0.0}, "sampling rate"),
        ({"sampling_rate": 1.5}, "sampling rate"),
        ({"noise_multiplier": 0.0}, "noise multiplier"),
        ({"noise_multiplier": math.inf}, "noise multiplier"),
        ({"clip": -1.0}, "clip norm"),
        ({"tau_over_lr": -0.1}, "tau"),
        ({"tau_over_lr": math.nan}, "tau"),
        ({"coordinate_clip_p": 0}, "coordinate clip"),
        ({"coordinate_clip_p": 2.5}, "coordinate clip"),
        ({"coordinate_clip_p": True}, "coordinate clip"),
        ({"expected_batch_size": 0}, "batch size"),
        ({"steps": 0}, "steps"),
        ({"steps": 10.5}, "steps"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"bound": "loose"}, "bound"),
        ({"orders": [1.5, 2]}, "orders"),
    ],
)
def test_rejects_invalid_inputs(changes, message):
    arguments = {"steps": STEPS, "delta": DELTA, "coordinate_clip_p": 100, **REFERENCE, **changes}
    with pytest.raises(ValueError, match=message):
        modelmix_epsilon(**arguments)


@pytest.mark.parametrize("width_over_sigma", [0.5, 3.0, 20.0])
def test_concentrating_the_gradient_is_the_worst_case(width_over_sigma):
    """The theorem charges p coordinates each moved by clip/sqrt(p): the worst an L2-clipped,
    coordinate-clamped gradient can do only if D_k(sqrt(x)) is convex in x (then spreading the
    same squared norm over more coordinates never costs more). Check D_k(s)/s^2 grows with s."""
    orders = [2, 3, 8, 32]
    shifts = np.geomspace(0.01, 4.0, 40)
    ratios = np.array(
        [
            shifted_uniform_gaussian_renyi(orders, sigma=1.0, shift=s, width=width_over_sigma)
            / s**2
            for s in shifts
        ]
    )
    assert np.all(np.diff(ratios, axis=0) >= -1e-9 * ratios[1:])
