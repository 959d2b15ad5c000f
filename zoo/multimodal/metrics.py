"""Cross-modal evaluation: recall@k in both directions and the similarity-matrix plot.

Example:
    >>> cross_modal_recall_at_k(image_embeddings, text_embeddings, ks=(1, 5))
    >>> similarity_matrix_plot(image_embeddings[:12], text_embeddings[:12], "sim.png")
"""

from __future__ import annotations

import numpy as np

from zoo.ops.distances import unit_rows

__all__ = ["cross_modal_recall_at_k", "similarity_matrix_plot"]


def cross_modal_recall_at_k(a_emb, b_emb, ks=(1, 5), labels_a=None, labels_b=None):
    """Cross-modal recall@k in both directions (a → b and b → a), by cosine similarity.

    Query ``i`` of one modality searches the whole other modality; it is a hit at ``k`` when an
    item with its label is among the ``k`` most similar. Without labels, pair ``i`` is its own
    label (instance retrieval: only the partner counts). With labels (e.g.
    ``zoo.multimodal.scenes.scene_keys``), any item describing the same thing counts, which is
    the fair measure when several pairs are indistinguishable. Uses the tiled exact search of
    ``zoo.metrics.retrieval``.

    Args:
        a_emb: ``(N, D)`` embeddings of modality a; b_emb: ``(M, D)`` of modality b.
        ks: values of k.
        labels_a, labels_b: ``(N,)`` / ``(M,)`` labels (default: the row index; then N == M).

    Returns:
        ``{"a_to_b": {"recall@1": ..., ...}, "b_to_a": {...}}``.

    Example:
        >>> cross_modal_recall_at_k(embed(tower_a, images), embed(tower_b, tokens))
    """
    from zoo.metrics.retrieval import retrieval_metrics

    a_emb, b_emb = np.asarray(a_emb, np.float32), np.asarray(b_emb, np.float32)
    if labels_a is None and labels_b is None:
        if len(a_emb) != len(b_emb):
            raise ValueError(
                f"instance recall needs as many a as b embeddings. Received {len(a_emb)} and "
                f"{len(b_emb)}; pass labels_a and labels_b."
            )
        labels_a = labels_b = np.arange(len(a_emb))
    elif labels_a is None or labels_b is None:
        raise ValueError("pass both labels_a and labels_b, or neither.")
    ks = tuple(int(k) for k in ks)
    result = {}
    for key, q, ql, g, gl in (
        ("a_to_b", a_emb, labels_a, b_emb, labels_b),
        ("b_to_a", b_emb, labels_b, a_emb, labels_a),
    ):
        metrics = retrieval_metrics(q, ql, g, gl, ks=ks, distance="cosine", map_at_r=False)
        result[key] = {f"recall@{k}": float(metrics[f"recall@{k}"]) for k in ks}
    return result


def similarity_matrix_plot(
    a_emb,
    b_emb,
    path,
    num=16,
    a_labels=None,
    b_labels=None,
    a_name="a",
    b_name="b",
    title=None,
):
    """Heat map of the cosine similarities of the first ``num`` pairs, written as a PNG.

    Matched pairs lie on the diagonal, so a trained model shows a bright diagonal.

    Args:
        a_emb, b_emb: ``(N, D)`` paired embeddings (row ``i`` of both is pair ``i``).
        path: output ``.png`` (parents created).
        num: pairs shown.
        a_labels, b_labels: tick labels (e.g. captions; long ones are shortened).
        a_name, b_name: axis names (modalities).
        title: plot title.

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    from zoo.metrics.plots import pyplot, save_figure

    plt = pyplot()

    n = min(int(num), len(a_emb), len(b_emb))
    if n < 1:
        raise ValueError("similarity_matrix_plot needs at least one pair.")
    sim = unit_rows(a_emb[:n]) @ unit_rows(b_emb[:n]).T
    fig, ax = plt.subplots(figsize=(4 + 0.35 * n, 3 + 0.35 * n), dpi=100)
    im = ax.imshow(sim, cmap="viridis", vmin=-1.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")

    def ticks(labels):
        if labels is None:
            return [str(i) for i in range(n)]
        return [str(t) if len(str(t)) <= 40 else str(t)[:37] + "..." for t in labels[:n]]

    ax.set_yticks(range(n), ticks(a_labels), fontsize=7)
    ax.set_xticks(range(n), ticks(b_labels), fontsize=7, rotation=90)
    ax.set_ylabel(a_name)
    ax.set_xlabel(b_name)
    ax.set_title(title or f"{a_name} vs {b_name}: cosine similarity of {n} pairs")
    fig.tight_layout()
    return save_figure(fig, path)
