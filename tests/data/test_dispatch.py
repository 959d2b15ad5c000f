import json

import pytest

from zoo.data import DataError, load_detection_data


def test_json_goes_to_coco_with_sibling_images(coco_dir):
    data = load_detection_data(str(coco_dir / "annotations.json"))
    assert data.class_names == ["one", "three", "seven"] and data.num_examples == 3


def test_json_with_image_dir_argument(coco_dir, tmp_path):
    moved = tmp_path / "elsewhere.json"
    moved.write_text((coco_dir / "annotations.json").read_text())
    (coco_dir / "images").rename(tmp_path / "pics")
    with pytest.raises(
        DataError,
        match=r"images\[0\]\.file_name = 'a\.png': image not found \(tried .*; pass the image folder with --image-dir",
    ):
        load_detection_data(str(moved))
    assert load_detection_data(str(moved), image_dir=str(tmp_path / "pics")).num_examples == 3


def test_folders_go_to_voc_and_yolo(tmp_path, write_image):
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    write_image(voc / "JPEGImages" / "1.jpg", 8, 8)
    (voc / "Annotations" / "1.xml").write_text(
        "<annotation><filename>1.jpg</filename></annotation>"
    )
    data = load_detection_data(str(voc))  # no ImageSets: every annotation file
    assert data.num_examples == 1 and len(data.class_names) == 20
    yolo = tmp_path / "yolo"
    write_image(yolo / "images" / "a.png", 8, 8)
    (yolo / "labels").mkdir()
    (yolo / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = load_detection_data(str(yolo), class_names=["thing"])
    assert data.class_names == ["thing"] and data.num_examples == 1


def test_synthetic_specs():
    data = load_detection_data("synthetic:6", image_size=(32, 32))
    assert data.num_examples == 6 and data.source.startswith("synthetic")
    assert load_detection_data("synthetic").num_examples == 1000
    train, val = (
        load_detection_data("synthetic:2"),
        load_detection_data("synthetic:2", split="validation"),
    )
    assert (
        next(iter(train.dataset))["images"].numpy().tolist()
        != next(iter(val.dataset))["images"].numpy().tolist()
    )


def test_tfds_spec_is_routed(tmp_path):
    with pytest.raises(DataError, match=r"^tfds:voc/2007: cannot load"):
        load_detection_data("tfds:voc/2007", data_dir=str(tmp_path))


def test_unknown_spec_lists_what_is_accepted(tmp_path):
    with pytest.raises(DataError) as info:
        load_detection_data(str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"--data = '{tmp_path}': unrecognised detection data")
    for accepted in (
        ".json",
        "Annotations/",
        "labels/",
        "tfds:voc/2007",
        "tfds:coco/2017",
        "synthetic",
    ):
        assert accepted in message
    with pytest.raises(DataError, match="annotation file not found"):
        load_detection_data(str(tmp_path / "missing.json"))
    (tmp_path / "x.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match=r"x\.json: categories: missing key 'categories'"):
        load_detection_data(str(tmp_path / "x.json"), image_dir=str(tmp_path))
    with pytest.raises(DataError, match="synthetic:<num_images>"):
        load_detection_data("synthetic:many")


def test_split_detection_data_is_a_seeded_partition():
    from zoo.data import split_detection_data, synthetic_shapes

    data = synthetic_shapes(20, image_size=(16, 16), seed=0)
    train, val = split_detection_data(data, 0.25, seed=4)
    assert (train.num_examples, val.num_examples) == (15, 5)
    key = lambda d: sorted(e["images"].numpy().tobytes() for e in d.dataset)  # noqa: E731
    everything = key(data)
    assert sorted(key(train) + key(val)) == everything
    assert not set(key(train)) & set(key(val))
    again = split_detection_data(data, 0.25, seed=4)[1]
    assert key(again) == key(val)
    with pytest.raises(ValueError, match="fraction=1.5"):
        split_detection_data(data, 1.5)


@pytest.mark.parametrize("num_images", [1, 4, 10])
def test_a_small_set_is_validated_on_its_training_images(num_images):
    from zoo.data import split_detection_data, synthetic_shapes

    data = synthetic_shapes(num_images, image_size=(16, 16), seed=0)
    with pytest.warns(UserWarning, match=f"only {num_images} images; validating on the training"):
        train, val = split_detection_data(data, 0.1)
    assert train is data and val is data


def test_eleven_images_are_split():
    from zoo.data import split_detection_data, synthetic_shapes

    train, val = split_detection_data(synthetic_shapes(11, image_size=(16, 16), seed=0), 0.1)
    assert (train.num_examples, val.num_examples) == (10, 1)


def test_yaml_devkit_and_missing_paths_are_routed(tmp_path, write_image):
    write_image(tmp_path / "y" / "images" / "val" / "a.png", 8, 8)
    (tmp_path / "y" / "data.yaml").write_text("train: images/val\nval: images/val\nnames: [a]\n")
    assert (
        load_detection_data(str(tmp_path / "y" / "data.yaml"), split="validation").num_examples == 1
    )
    assert load_detection_data(str(tmp_path / "y")).class_names == ["a"]
    with pytest.raises(DataError, match=r"^--image-dir = .*: a YOLO set finds its images"):
        load_detection_data(str(tmp_path / "y"), image_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"missing\.yaml: dataset file not found; .* --data"):
        load_detection_data(str(tmp_path / "missing.yaml"))
    with pytest.raises(DataError, match=r"^--data = '.*nowhere': not found; accepted --data"):
        load_detection_data(str(tmp_path / "nowhere"))
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    write_image(voc / "JPEGImages" / "1.jpg", 8, 8)
    (voc / "Annotations" / "1.xml").write_text(
        "<annotation><filename>1.jpg</filename></annotation>"
    )
    (voc / "ImageSets" / "Main" / "val.txt").write_text("1\n")
    data = load_detection_data(str(tmp_path / "VOCdevkit"), split="validation")
    assert data.num_examples == 1 and data.source == str(voc)
