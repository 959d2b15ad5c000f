"""export_encoder: SavedModel + fp32 (+ int8) .tflite under the next free version, verified."""

import keras
import numpy as np

from zoo.export import export_encoder, next_version, read_manifest


def _encoder():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1), name="images")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="embedding")(x))


def test_export_encoder_writes_verified_versions(tmp_path):
    encoder = _encoder()
    images = np.random.default_rng(0).uniform(0, 255, (16, 12, 12, 1)).astype("float32")
    assert next_version(tmp_path, "enc") == 1
    saved, report = export_encoder(
        encoder,
        tmp_path,
        "enc",
        images[:4],
        metrics={"acc": 0.5, "map": float("nan")},
        int8_samples=images,
        verbose=False,
    )
    assert saved == tmp_path / "enc" / "1"
    assert (saved / "model_fp32.tflite").is_file() and (saved / "model_int8.tflite").is_file()
    assert read_manifest(saved)["metrics"] == {"acc": 0.5, "map": None}  # undefined -> null
    assert "NaN" not in (saved / "manifest.json").read_text()
    assert report  # verify_export ran (it raises on a mismatch)
    again, _ = export_encoder(encoder, tmp_path, "enc", images[:4], verbose=False)
    assert again == tmp_path / "enc" / "2" and not (again / "model_int8.tflite").exists()
