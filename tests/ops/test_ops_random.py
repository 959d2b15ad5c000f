"""zoo.ops.random: the normal quantile table, normal_from_bits and hashed_bits."""

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.ops.random import hashed_bits, normal_from_bits, normal_quantiles, uniform_bits


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


def _lowbias32(x):
    mask = (1 << 32) - 1
    x ^= x >> 16
    x = (x * 0x7FEB352D) & mask
    x ^= x >> 15
    x = (x * 0x846CA68B) & mask
    return x ^ (x >> 16)


def _hashed_bits_reference(k0, k1, num):
    """hashed_bits in plain Python integers: h(h(k0 + i * 0x9E3779B9) ^ k1)."""
    mask = (1 << 32) - 1
    return [_lowbias32(_lowbias32((k0 + i * 0x9E3779B9) & mask) ^ k1) for i in range(num)]


def test_hashed_bits_match_the_reference():
    key = (0xFFFFFFF0, 0x12345678)  # the counter wraps around 2**32 within the stream
    values = hashed_bits(tf.constant(key, tf.uint32), 1000).numpy()
    assert values.dtype == np.uint32
    assert values.tolist() == _hashed_bits_reference(*key, 1000)
    assert len(set(values.tolist())) == 1000  # a bijection of the counter: no repeats
    assert hashed_bits((0, 0), 1).numpy().tolist() == [0]  # xor-shift-multiply fixes 0
    assert _lowbias32(1) == 0x688990C0  # worked by hand through the five steps


def test_hashed_bits_are_the_same_under_xla():
    key = uniform_bits([2], tf.constant([5, 6]))
    compiled = tf.function(lambda k: hashed_bits(k, 4097), jit_compile=True)(key)
    np.testing.assert_array_equal(compiled.numpy(), hashed_bits(key, 4097).numpy())


def test_normals_from_hashed_bits():
    keys = [uniform_bits([2], tf.constant([7, s])) for s in range(2)]
    keys.append(tf.stack([keys[0][0], keys[0][1] ^ 1]))  # one bit of k1 changed
    z = [normal_from_bits(hashed_bits(k, 100_000), [200_000]).numpy() for k in keys]
    for values in z:
        assert abs(values.mean()) < 0.011 and abs(values.std() - 1.0) < 0.011
        # 5 standard errors at n = 200k: 0.005 for the coverage, 0.011 for correlations
        assert np.mean(np.abs(values) < 1) == pytest.approx(0.6827, abs=0.005)
        for lag in (1, 2, 3):  # within one value and across neighbouring counters
            assert abs(np.corrcoef(values[:-lag], values[lag:])[0, 1]) < 0.011
    for a, b in ((0, 1), (0, 2)):  # other keys give unrelated streams
        assert abs(np.corrcoef(z[a], z[b])[0, 1]) < 0.011
        assert np.mean(z[a] == z[b]) < 0.011
