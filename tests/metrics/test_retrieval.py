"""zoo.metrics.retrieval: tiled k-NN vs brute force, recall@k / MAP@R goldens, verification."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.metrics.retrieval import (
    compute_embeddings,
    evaluate_embeddings,
    knn_search,
    map_at_r,
    pair_distances,
    plot_embeddings,
    recall_at_k,
    retrieval_metrics,
    sample_verification_pairs,
    val_at_far,
    verification_accuracy,
    verification_metrics,
)


def brute_neighbours(q, g, k, leave_one_out):
    d = np.sum((q[:, None] - g[None]) ** 2, axis=-1)
    if leave_one_out:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("leave_one_out", [True, False])
@pytest.mark.parametrize("tiles", [(1000, 1000), (7, 5), (3, 64)])
def test_tiled_search_equals_brute_force(leave_one_out, tiles):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(23, 4)).astype("float32")
    g = q if leave_one_out else rng.normal(size=(31, 4)).astype("float32")
    d, i = knn_search(
        q, None if leave_one_out else g, k=6, query_batch_size=tiles[0], gallery_batch_size=tiles[1]
    )
    bd, bi = brute_neighbours(q, g, 6, leave_one_out)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-4, atol=1e-4)
    if leave_one_out:
        assert not np.any(i == np.arange(len(q))[:, None])


def test_search_distances_l2_and_cosine():
    q = np.array([[1.0, 0.0], [0.0, 2.0]], "float32")
    g = np.array([[3.0, 0.0], [0.0, -1.0], [1.0, 1.0]], "float32")
    d, i = knn_search(q, g, k=3, distance="l2")
    np.testing.assert_allclose(d[0], [1.0, np.sqrt(2.0), 2.0], rtol=1e-5)
    d, i = knn_search(q, g, k=3, distance="cosine")
    assert i[0, 0] == 0 and i[1].tolist() == [2, 0, 1]
    np.testing.assert_allclose(d[1], [1 - np.sqrt(0.5), 1.0, 2.0], atol=1e-5)


def test_recall_and_map_at_r_hand_computed():
    # 1-D points, leave-one-out. Labels: A A B A B
    x = np.array([[0.0], [1.0], [2.1], [3.3], [4.6]], "float32")
    y = np.array([0, 0, 1, 0, 1])
    # neighbour orders: 0: 1,2,3,4  1: 0,2,3,4  2: 1,3,0,4  3: 2,4,1,0  4: 3,2,1,0
    result = retrieval_metrics(x, y, ks=(1, 2))
    # recall@1: q0 ok, q1 ok, q2 (nn 1=A) no, q3 (nn 2=B) no, q4 (nn 3=A) no -> 2/5
    assert result["recall@1"] == pytest.approx(2 / 5)
    # recall@2: q2 (1,3) no; q3 (2,4) no; q4 (3,2) yes -> 3/5
    assert result["recall@2"] == pytest.approx(3 / 5)
    # AP@R: q0 R=2: ranks 1(A) 2(B) -> 1/2; q1 R=2: same -> 1/2; q2 R=1: rank1 A -> 0;
    # q3 R=2: ranks 2(B),4(B) -> 0; q4 R=1: 3(A) -> 0
    assert result["map@r"] == pytest.approx((0.5 + 0.5) / 5)
    assert map_at_r(x, y) == pytest.approx(0.2)
    assert recall_at_k(x, y, ks=(1,)) == {"recall@1": pytest.approx(0.4)}


def test_map_at_r_perfect_and_gallery_protocol():
    x = np.array([[0.0], [0.1], [5.0], [5.1]], "float32")
    y = np.array([0, 0, 1, 1])
    assert retrieval_metrics(x, y)["map@r"] == pytest.approx(1.0)
    result = retrieval_metrics(x[:2], y[:2], x[2:], y[2:], ks=(1,))  # no same class in gallery
    assert result["num_queries"] == 0 and result["recall@1"] == 0.0
    result = retrieval_metrics(np.array([[0.05]], "float32"), [0], x, y, ks=(1, 2))
    assert result["recall@1"] == 1.0 and result["map@r"] == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 40), st.integers(2, 5))
def test_recall_matches_brute_force_property(seed, n, classes):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = rng.integers(0, classes, n)
    got = retrieval_metrics(x, y, ks=(1, 4), query_batch_size=7, gallery_batch_size=9)
    _, idx = brute_neighbours(x, x, n - 1, True)
    rel = y[idx] == y[:, None]
    r = np.array([np.sum(y == c) - 1 for c in y])
    valid = r > 0
    assert got["num_queries"] == valid.sum()
    if valid.any():
        assert got["recall@1"] == pytest.approx(rel[valid, 0].mean())
        assert got["recall@4"] == pytest.approx(rel[valid, :4].any(1).mean())
        aps = [
            np.sum(np.cumsum(rel[q, : r[q]]) / np.arange(1, r[q] + 1) * rel[q, : r[q]]) / r[q]
            for q in np.flatnonzero(valid)
        ]
        assert got["map@r"] == pytest.approx(np.mean(aps))


def test_large_gallery_memory_is_tiled():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(64, 8)).astype("float32")
    g = rng.normal(size=(5000, 8)).astype("float32")
    d_small, i_small = knn_search(q, g, k=3, query_batch_size=16, gallery_batch_size=256)
    d_big, i_big = knn_search(q, g, k=3)
    np.testing.assert_array_equal(i_small, i_big)


def test_verification_pairs_are_balanced():
    y = np.repeat(np.arange(5), 10)
    i, j, same = sample_verification_pairs(y, num_pairs=400, seed=1)
    assert same.sum() == 200 and len(i) == 400
    np.testing.assert_array_equal(y[i] == y[j], same)
    assert np.all(i != j)


def test_verification_accuracy_separable_and_threshold():
    d = np.concatenate([np.linspace(0, 1, 100), np.linspace(2, 3, 100)])
    same = np.arange(200) < 100
    accuracy, std, threshold = verification_accuracy(d, same, num_folds=10)
    assert accuracy == 1.0 and std == 0.0 and 1.0 < threshold < 2.0


def test_verification_accuracy_matches_exhaustive_search_on_noisy_data():
    rng = np.random.default_rng(0)
    same = rng.random(500) < 0.5
    d = np.where(same, rng.normal(1.0, 0.5, 500), rng.normal(2.0, 0.5, 500))
    accuracy, _, _ = verification_accuracy(d, same, num_folds=10)
    best_overall = max(np.mean((d <= t) == same) for t in np.unique(d))
    assert 0.75 < accuracy <= best_overall + 1e-9


def test_val_at_far_hand_computed():
    # 1000 different pairs at distances 1..1000; same pairs at 0.5, 1.5, 2.5, 500
    diff = np.arange(1, 1001, dtype=float)
    same_d = np.array([0.5, 1.5, 2.5, 500.0])
    d = np.concatenate([same_d, diff])
    same = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    val, far, threshold = val_at_far(d, same, far=1e-3)  # one false accept allowed: d < 2
    assert threshold == 2.0 and far == pytest.approx(1e-3) and val == pytest.approx(0.5)
    val, far, _ = val_at_far(d, same, far=0.0)
    assert far == 0.0 and val == pytest.approx(0.25)


def test_verification_metrics_keys_and_auc():
    d = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.25])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    result = verification_metrics(d, same, num_folds=2, far_targets=(0.5,))
    assert result["roc_auc"] == pytest.approx(8 / 9)
    assert {"accuracy", "accuracy_std", "threshold", "val@far=0.5", "far@0.5"} <= set(result)


def test_pair_distances_and_embedding_helpers():
    e = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(pair_distances(e, [0, 1], [1, 2]), [5.0, np.sqrt(18.0)])
    np.testing.assert_allclose(pair_distances(e, [1], [2], "cosine"), [0.2])
    emb = compute_embeddings(lambda x: x.reshape(len(x), -1) * 2, np.ones((5, 2, 2)), 2)
    assert emb.shape == (5, 4) and np.all(emb == 2.0) and emb.dtype == np.float32


def test_evaluate_embeddings_with_gallery():
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(4), 30)
    x = rng.normal(size=(120, 3)) * 0.1 + y[:, None]
    result = evaluate_embeddings(x[:60], y[:60], x[60:], y[60:], num_pairs=200, far_targets=(0.01,))
    assert result["recall@1"] == 1.0 and result["map@r"] == pytest.approx(1.0)
    assert result["verification_accuracy"] == 1.0 and result["verification_roc_auc"] == 1.0


@pytest.mark.slow
def test_plot_embeddings_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 5)) + y[:, None] * 3
    path = plot_embeddings(
        x, y, tmp_path / "sub" / "tsne.png", class_names=["a", "b", "c"], max_points=90
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_retrieval_callback_logs_metrics():
    import keras

    from zoo.metrics import retrieval

    y = np.repeat(np.arange(3), 4)
    x = (np.eye(3)[y] * 10).astype("float32")
    encoder = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    callback = retrieval.RetrievalMetricsCallback(encoder, x, y, ks=(1,), map_at_r=True)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {"val_recall@1": 1.0, "val_map@r": 1.0}
