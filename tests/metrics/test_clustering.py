"""NMI: equal to scikit-learn's to 1e-10, invariances and limit cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.metrics.clustering import contingency_matrix, normalized_mutual_info

sklearn_metrics = pytest.importorskip(
    "sklearn.metrics", reason="scikit-learn is the reference implementation of NMI"
)


@pytest.mark.parametrize("seed", range(20))
def test_nmi_equals_sklearn_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    a = rng.integers(0, int(rng.integers(1, 12)), n)
    b = rng.integers(0, int(rng.integers(1, 30)), n)
    want = sklearn_metrics.normalized_mutual_info_score(a, b)
    assert abs(normalized_mutual_info(a, b) - want) <= 1e-10


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(-3, 6)), min_size=1, max_size=60),
)
def test_nmi_equals_sklearn_property(pairs):
    a, b = (np.array(v) for v in zip(*pairs, strict=True))
    want = sklearn_metrics.normalized_mutual_info_score(a, b)
    assert abs(normalized_mutual_info(a, b) - want) <= 1e-10


def test_nmi_invariances_and_limit_cases():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 200)
    b = rng.integers(0, 7, 200)
    value = normalized_mutual_info(a, b)
    assert 0.0 <= value <= 1.0
    assert normalized_mutual_info(b, a) == pytest.approx(value, abs=1e-12)
    relabel = np.array([9, 3, 4, 0, 1, 7, 8])[b]  # renaming clusters changes nothing
    assert normalized_mutual_info(a, relabel) == pytest.approx(value, abs=1e-12)
    assert normalized_mutual_info(a, a) == pytest.approx(1.0)
    assert normalized_mutual_info(["x", "y", "x"], [2, 5, 2]) == pytest.approx(1.0)
    assert normalized_mutual_info([0, 0, 0], [1, 1, 1]) == 1.0  # nobody splits the data
    assert normalized_mutual_info([0, 1, 2], [0, 0, 0]) == 0.0
    assert normalized_mutual_info([0, 0, 1, 1], [0, 1, 0, 1]) == 0.0  # independent
    assert normalized_mutual_info([], []) == 1.0


def test_contingency_matrix_counts():
    counts = contingency_matrix([0, 0, 1, 2, 2, 2], ["a", "b", "b", "a", "a", "b"])
    np.testing.assert_array_equal(counts, [[1, 1], [0, 1], [2, 1]])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        normalized_mutual_info([0, 1], [0])
    with pytest.raises(ValueError, match="1-D"):
        normalized_mutual_info([[0, 1]], [[0, 1]])
