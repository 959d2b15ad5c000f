"""zoo.ops.random: the normal quantile table and normal_from_bits."""

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.ops.random import normal_from_bits, normal_quantiles, uniform_bits


def test_quantiles_invert_the_normal_cdf():
    q = normal_quantiles().astype(np.float64)
    assert q.shape == (65536,) and np.all(np.diff(q) > 0)
    np.testing.assert_allclose(q, -q[::-1], atol=1e-6)  # symmetric about 0
    for i in (0, 1, 100, 20000, 32767, 32768, 50000, 65535):
        cdf = 0.5 * (1.0 + math.erf(q[i] / math.sqrt(2.0)))
        assert cdf == pytest.approx((i + 0.5) / 65536, rel=1e-5, abs=1e-9)
    assert 4.3 < -q[0] < 4.35


def test_each_half_of_a_draw_picks_its_quantile():
    q = normal_quantiles()
    hi, lo = np.array([0, 65535, 32768, 123]), np.array([65535, 0, 7, 40000])
    bits = ((hi.astype(np.uint64) << 16) | lo.astype(np.uint64)).astype(np.uint32)
    values = normal_from_bits(tf.constant(bits), [7]).numpy()
    # little-endian bitcast: the low half first, then the high half; the odd tail is cut
    expected = np.stack([q[lo], q[hi]], axis=1).reshape(-1)[:7]
    np.testing.assert_array_equal(values, expected)


def test_statistics_of_many_draws():
    z = normal_from_bits(uniform_bits([200_000], tf.constant([3, 4])), [20, 100, 200]).numpy()
    assert z.shape == (20, 100, 200) and z.dtype == np.float32
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    for k, expected in ((1, 0.6827), (2, 0.9545), (3, 0.9973)):
        assert np.mean(np.abs(z) < k) == pytest.approx(expected, abs=0.003)
    pairs = z.reshape(-1, 2)  # the two halves of one draw are uncorrelated
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 0.01
