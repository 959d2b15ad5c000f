"""Every zoo model saves to ``.keras`` and loads back with ``safe_mode=True``.

``safe_mode=True`` refuses to deserialise Python code (lambdas, pickled functions), so a user
never has to allow arbitrary code to open a zoo model. Each builder is built at a small size,
compiled the way its family trains it where the model carries its own loss, saved, loaded in safe
mode and checked to give the same outputs.
"""

import keras
import numpy as np
import pytest

import zoo
from zoo.ssl.deepcluster import DeepCluster


def _image_encoder(shape=(16, 16, 3)):
    return zoo.build_embedding_model(shape, embedding_dim=8, width=8)


def _ssl_encoder(shape=(16, 16, 3)):
    return zoo.build_ssl_encoder(shape, width=8)


def _text_encoder():
    return zoo.build_text_encoder(50, 8, embed_dim=16, num_heads=2, ff_dim=16, num_layers=1)


def _images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape)).astype("float32")


def _tokens(batch=2, length=8, vocab=50):
    return np.random.default_rng(0).integers(1, vocab, (batch, length)).astype("int32")


def _yolo(**kwargs):
    model = zoo.build_yolo(3, input_shape=(64, 64, 3), width_multiplier=0.25, **kwargs)
    model.compile(optimizer="adam")
    return model, _images((64, 64, 3))


def _landmarks(head):
    model = zoo.build_landmark_model(5, input_shape=(32, 32, 3), head=head, width_multiplier=0.25)
    return model, _images((32, 32, 3))


def _siamese():
    encoder = _image_encoder()
    x = _images((16, 16, 3))
    return zoo.build_siamese(encoder), {"input_a": x, "input_b": x[::-1]}


def _triplet():
    x = _images((16, 16, 3))
    return zoo.build_triplet(_image_encoder()), {"anchor": x, "positive": x[::-1], "negative": x}


def _two_tower():
    a, b = _image_encoder(), _image_encoder((16, 16, 1))
    inputs = {"input_a": _images((16, 16, 3)), "input_b": _images((16, 16, 1))}
    return zoo.build_two_tower(a, b, projection_dim=8), inputs


def _pretext(task):
    shape = (16, 16, 1) if task == "colorization" else (16, 16, 3)  # colorization sees L only
    model = zoo.build_pretext_model(_ssl_encoder(shape), task, input_shape=shape)
    return model, _images(shape)


def _simclr():
    model = zoo.build_simclr(_ssl_encoder(), projection_dim=8)
    model.compile(optimizer="adam")
    return model, _images((16, 16, 3))


def _vae():
    model = zoo.build_vae(_ssl_encoder(), (16, 16, 3), latent_dim=4, decoder_width=8)
    model.compile(optimizer="adam")
    return model, _images((16, 16, 3))


def _deepcluster():
    model = DeepCluster(_ssl_encoder(), k=4, num_examples=10)
    return model, _images((16, 16, 3))


def _mlm():
    return zoo.build_mlm_model(_text_encoder(), 50), _tokens()


def _clip():
    image = zoo.build_image_encoder((16, 16, 3), embedding_dim=8, width=8)
    text = zoo.build_caption_encoder(40, max_length=6, embedding_dim=8, width=8)
    tokens = np.random.default_rng(0).integers(1, 40, (2, 6)).astype("int32")
    inputs = {"input_a": _images((16, 16, 3)), "input_b": tokens}
    return zoo.build_clip(image, text, projection_dim=8), inputs


def _audio():
    return zoo.build_audio_encoder((16, 16, 2), embedding_dim=8, width=8), _images((16, 16, 2))


CASES = {
    "yolo": _yolo,
    "yolo-anchors": lambda: _yolo(anchors=[(0.1, 0.2), (0.3, 0.3), (0.6, 0.5)]),
    "landmarks-heatmap": lambda: _landmarks("heatmap"),
    "landmarks-regression": lambda: _landmarks("regression"),
    "embedding": lambda: (_image_encoder(), _images((16, 16, 3))),
    "siamese": _siamese,
    "triplet": _triplet,
    "two-tower": _two_tower,
    **{f"pretext-{task}": (lambda task=task: _pretext(task)) for task in zoo.ssl.pretext.TASKS},
    "simclr": _simclr,
    "vae": _vae,
    "deepcluster": _deepcluster,
    "text-encoder": lambda: (_text_encoder(), _tokens()),
    "mlm": _mlm,
    "clip": _clip,
    "audio-encoder": _audio,
}


def _flat(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[key]) for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [array for item in outputs for array in _flat(item)]
    return [np.asarray(outputs)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_file_loads_in_safe_mode(case, tmp_path):
    model, inputs = CASES[case]()
    expected = _flat(model(inputs, training=False))
    path = tmp_path / f"{case}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    got = _flat(loaded(inputs, training=False))
    assert type(loaded) is type(model)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
