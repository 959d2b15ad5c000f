"""The tiny two-output conv model the export tests share (a uniquely named module, so
`from tiny_export_model import ...` never picks up another directory's conftest)."""

HEIGHT, WIDTH = 32, 32


def build_tiny_model(seed=1, name="tiny"):
    """32x32x3 -> Rescaling -> 2 convs -> pool -> {"logits": (4,), "embedding": (8,)}.

    The second conv has 3*3*8*16 = 1152 weights, enough (>= 1024) for dynamic-range quantization
    to actually quantize it.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((HEIGHT, WIDTH, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(4, name="logits")(x)
    embedding = keras.layers.Dense(8, name="embedding_dense")(x)
    return keras.Model(inputs, {"logits": logits, "embedding": embedding}, name=name)


EXPORT_KWARGS = dict(
    class_names=["a", "b", "c", "d"],
    preprocessing={"value_range": [0, 255], "normalisation": "Rescaling(1/255) in the model"},
    metrics={"top1": 0.25},
    config={"width": 8, "input_shape": (HEIGHT, WIDTH, 3)},
)
