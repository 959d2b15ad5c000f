"""Opening a TFDS set, shared by every TFDS reader (detection here, celeb_a in landmarks)."""

from __future__ import annotations

from zoo.data.errors import DataError

__all__ = ["load_tfds"]


def load_tfds(name, split="train", data_dir=None, *, download=False):
    """The builder and the records of a TFDS set, images left encoded.

    Args:
        name: TFDS name with optional version/config (``"voc/2007"``, ``"celeb_a"``).
        split: TFDS split string (``"train"``, ``"validation"``, ``"train[:10%]"``).
        data_dir: TFDS data folder (``None``: TFDS default).
        download: let TFDS download and prepare the set if it is missing (off: the zoo downloads
            nothing at run time unless asked).

    Returns:
        ``(builder, dataset)``: the ``tfds`` builder (its ``info`` holds the features) and the
        ``tf.data.Dataset`` of examples in file order, ``image`` kept as encoded bytes
        (``tfds.decode.SkipDecoding``), so shuffling stays cheap.

    Raises:
        DataError: the set is not prepared in ``data_dir`` (file ``tfds:<name>``).

    Example:
    ```python
    builder, dataset = load_tfds("voc/2007", split="validation", data_dir="~/tensorflow_datasets")
    ```
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        dataset = builder.as_dataset(
            split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
        )
    except (AssertionError, FileNotFoundError, tfds.core.DatasetNotFoundError) as error:
        raise DataError(
            f"cannot load ({error}); nothing is downloaded at run time: prepare it first "
            f"with `tfds build {name.split(':')[0].split('/')[0]}` (download=True in Python)",
            file=f"tfds:{name}",
        ) from None
    return builder, dataset
