"""A compiled triplet network (shared tower, the triplet loss on explicit triplets) survives a
``.keras`` round trip in safe mode: same loss, same embeddings, same distances."""

import keras
import numpy as np

from zoo import build_embedding_model, build_triplet
from zoo.metric_learning import TripletMarginLoss


def test_compiled_triplet_model_round_trips_with_its_loss(tmp_path):
    tower = build_embedding_model((16, 16, 1), embedding_dim=8, width=4)
    model = build_triplet(tower)
    model.compile("adam", loss={"embeddings": TripletMarginLoss(margin=0.3)})
    rng = np.random.default_rng(0)
    x = {k: rng.uniform(0, 255, (6, 16, 16, 1)).astype("float32") for k in model.input}
    model.fit(x, {"embeddings": np.zeros((6, 3, 8), "float32")}, epochs=1, verbose=0)

    path = tmp_path / "triplet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.loss["embeddings"].get_config() == model.loss["embeddings"].get_config()
    a, b = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for key in ("embeddings", "distances"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    # the tower's embeddings are unit vectors, also after loading
    norms = np.linalg.norm(b["embeddings"], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
