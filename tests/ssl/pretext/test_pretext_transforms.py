"""Pretext transforms: labels correct by construction, colour maths vs NumPy, noise statistics,
masks, seeds, errors."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zoo.ops import lab_to_rgb, lab_to_rgb_numpy, rgb_to_lab
from zoo.ssl import (
    PRETEXT_TASKS,
    TASKS,
    ab_bins,
    as_seed,
    batch_seed,
    inpainting_masks,
    jigsaw_crop,
    jigsaw_min_distance,
    jigsaw_permutations,
    pretext_options,
    pretext_transform,
    quantize_ab,
    rotate_images,
    shuffle_tiles,
)


def _images(b=6, h=12, w=12, c=3, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, c)).astype(dtype)


# === NumPy reference of the standard sRGB → CIE Lab (D65) formulas ===


def _lab_reference(rgb):
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])

    def f(t):
        return np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)

    fx, fy, fz = f(xyz[..., 0]), f(xyz[..., 1]), f(xyz[..., 2])
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


# === rotation ===


def test_rotate_images_matches_numpy_rot90():
    x = _images(4, 5, 5, 2)
    for k in range(-1, 6):
        got = rotate_images(x, np.full(4, k)).numpy()
        want = np.rot90(x, k, axes=(1, 2))
        np.testing.assert_array_equal(got, want)


def test_rotation_rotated_back_by_label_is_the_original():
    x = np.arange(32 * 7 * 7 * 1, dtype=np.float32).reshape(32, 7, 7, 1)
    inputs, k = pretext_transform("rotation", x, seed=[3, 4])
    assert inputs.dtype == tf.float32 and inputs.shape == (32, 7, 7, 1)
    assert k.dtype == tf.int32 and k.shape == (32,)
    assert set(np.unique(k.numpy())) == {0, 1, 2, 3}  # 32 draws: every label shows up
    np.testing.assert_array_equal(rotate_images(inputs, 4 - k).numpy(), x)
    for b in range(32):
        np.testing.assert_array_equal(inputs[b].numpy(), np.rot90(x[b], int(k[b])))


def test_rotation_refuses_non_square_images():
    with pytest.raises(ValueError, match=r"H == W.*\(2, 6, 8, 3\)"):
        pretext_transform("rotation", np.zeros((2, 6, 8, 3)), 0)


# === jigsaw ===


@pytest.mark.parametrize("tiles", [False, True])
def test_jigsaw_unshuffling_by_the_permutation_restores_the_cropped_image(tiles):
    x = np.arange(5 * 14 * 16 * 3, dtype=np.float32).reshape(5, 14, 16, 3)
    crop = x[:, 1:13, 0:15]  # 3·(14//3) = 12 rows from 1, 15 columns from 0
    np.testing.assert_array_equal(jigsaw_crop(x).numpy(), crop)
    perms = jigsaw_permutations(10)
    inputs, p = pretext_transform("jigsaw", x, 7, num_permutations=10, tiles=tiles)
    assert p.dtype == tf.int32 and p.shape == (5,)
    assert inputs.shape == ((5, 9, 4, 5, 3) if tiles else (5, 12, 15, 3))
    original = crop.reshape(5, 3, 4, 3, 5, 3).transpose(0, 1, 3, 2, 4, 5).reshape(5, 9, 4, 5, 3)
    for b in range(5):
        perm = perms[int(p[b])]
        if tiles:
            for j in range(9):  # slot j shows original tile perm[j]
                np.testing.assert_array_equal(inputs[b, j].numpy(), original[b, perm[j]])
    if not tiles:
        order = np.argsort(perms[p.numpy()], axis=1)
        np.testing.assert_array_equal(shuffle_tiles(inputs, order).numpy(), crop)


def test_jigsaw_permutations_are_deterministic_permutations_with_the_claimed_distance():
    perms = jigsaw_permutations(100)
    assert perms.shape == (100, 9) and perms.dtype == np.int32
    assert not perms.flags.writeable
    np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(9), (100, 1)))
    assert len({tuple(p) for p in perms}) == 100
    # Claimed in the docstring: 9 up to n = 9, then 8 (n = 10), 6 (n = 100), seed 0.
    assert jigsaw_min_distance(jigsaw_permutations(9)) == 9
    assert jigsaw_min_distance(jigsaw_permutations(10)) == 8
    assert jigsaw_min_distance(perms) == 6
    # Greedy: a prefix of the set is the set for a smaller n; a fresh computation agrees.
    np.testing.assert_array_equal(jigsaw_permutations(10), perms[:10])
    from zoo.ssl.pretext.jigsaw_task import _jigsaw_permutations

    np.testing.assert_array_equal(_jigsaw_permutations.__wrapped__(100, 0), perms)
    assert not np.array_equal(jigsaw_permutations(10, seed=1), perms[:10])
    # Far from random: 100 random permutations have a minimum distance of 2 or 3.
    rng = np.random.default_rng(0)
    assert jigsaw_min_distance(np.array([rng.permutation(9) for _ in range(100)])) <= 4


# === colorization ===


KNOWN_COLOURS = {  # sRGB → (L*, a*, b*), D65
    (255, 255, 255): (100.0, 0.0, 0.0),
    (0, 0, 0): (0.0, 0.0, 0.0),
    (255, 0, 0): (53.2408, 80.0925, 67.2032),
    (0, 255, 0): (87.7347, -86.1827, 83.1793),
    (0, 0, 255): (32.2970, 79.1875, -107.8602),
    (128, 128, 128): (53.5850, 0.0, 0.0),
}


def test_rgb_to_lab_known_colours_and_numpy_reference():
    rgb = np.array(list(KNOWN_COLOURS), np.float32)
    got = rgb_to_lab(rgb).numpy()
    np.testing.assert_allclose(got, np.array(list(KNOWN_COLOURS.values())), atol=2e-3)
    np.testing.assert_allclose(got, _lab_reference(rgb), atol=2e-3)
    random = _images(4, 8, 8)
    np.testing.assert_allclose(rgb_to_lab(random).numpy(), _lab_reference(random), atol=5e-3)
    # Includes the linear segments of both the sRGB curve (c <= 0.04045) and f (t <= (6/29)³).
    dark = np.array([[1, 2, 3], [10, 0, 5], [0, 0, 9]], np.float32)
    np.testing.assert_allclose(rgb_to_lab(dark).numpy(), _lab_reference(dark), atol=2e-3)


def test_lab_to_rgb_inverts_rgb_to_lab():
    x = _images(4, 8, 8).astype(np.float32)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(x)).numpy(), x, atol=0.02)


def test_lab_to_rgb_numpy_matches_the_tf_op_and_clips_out_of_gamut():
    x = _images(4, 8, 8).astype(np.float32)
    lab = rgb_to_lab(x).numpy()
    np.testing.assert_allclose(lab_to_rgb_numpy(lab), x, atol=0.02)
    # Out of gamut (very saturated, dark, beyond white): both clip the same way.
    wild = np.array([[20.0, 120.0, -120.0], [5.0, -60.0, 80.0], [104.0, 0.0, 0.0]])
    np.testing.assert_allclose(lab_to_rgb_numpy(wild), lab_to_rgb(wild).numpy(), atol=0.02)
    assert lab_to_rgb_numpy(wild).min() >= 0 and lab_to_rgb_numpy(wild).max() <= 255


def test_colorization_regression_inputs_and_targets():
    x = _images(3, 8, 8)
    inputs, targets = pretext_transform("colorization", x, 0)
    assert inputs.shape == (3, 8, 8, 1) and targets.shape == (3, 8, 8, 2)
    assert inputs.dtype == tf.float32 and targets.dtype == tf.float32
    lab = _lab_reference(x)
    np.testing.assert_allclose(inputs.numpy()[..., 0], lab[..., 0] * 2.55, atol=0.01)
    np.testing.assert_allclose(targets.numpy(), lab[..., 1:] / 128.0, atol=1e-4)


def test_ab_bins_in_gamut_grid():
    bins = ab_bins()
    assert bins.shape == (261, 2) and bins.dtype == np.float32 and not bins.flags.writeable
    np.testing.assert_array_equal(bins % 10, 0)
    assert [0.0, 0.0] in bins.tolist()
    assert np.all(np.diff(bins[:, 0]) >= 0)  # sorted by a*, then b*
    # sRGB primaries fall in kept bins, far corners of the ab square do not.
    for a, b in [(80, 70), (-90, 80), (80, -110)]:
        assert [a, b] in bins.tolist()
    assert [-100, -100] not in bins.tolist() and [100, 100] not in bins.tolist()
    assert len(ab_bins(20)) < len(bins)


def test_colorization_quantized_targets_are_the_nearest_bin():
    x = _images(4, 10, 10, seed=3)
    inputs, targets = pretext_transform("colorization", x, 0, mode="quantized")
    assert inputs.shape == (4, 10, 10, 1) and targets.shape == (4, 10, 10)
    assert targets.dtype == tf.int32
    ab = _lab_reference(x)[..., 1:].reshape(-1, 2)
    d2 = ((ab[:, None, :] - ab_bins()[None].astype(np.float64)) ** 2).sum(-1)
    nearest = d2.argmin(1)
    got = targets.numpy().reshape(-1)
    # Equal up to float32 rounding at a bin boundary: then both bins are equally near.
    close = np.isclose(d2[np.arange(len(got)), got], d2[np.arange(len(got)), nearest], atol=0.05)
    assert np.all(close) and np.mean(got == nearest) > 0.99
    grey = np.full((1, 2, 2, 3), 77, np.uint8)
    zero = ab_bins().tolist().index([0.0, 0.0])
    assert np.all(pretext_transform("colorization", grey, 0, mode="quantized")[1].numpy() == zero)
    assert int(quantize_ab([[4.0, -4.9]])[0]) == zero


def test_colorization_refuses_one_channel_images():
    with pytest.raises(ValueError, match=r"RGB.*C == 3.*\(2, 8, 8, 1\)"):
        pretext_transform("colorization", np.zeros((2, 8, 8, 1), np.uint8), 0)


# === inpainting ===


def test_rectangle_masks_are_single_boxes_with_area_in_range_and_fill():
    x = _images(64, 16, 20, seed=1)
    inputs, targets = pretext_transform("inpainting", x, 5, min_area=0.1, max_area=0.3)
    assert inputs.shape == (64, 16, 20, 3) and targets.shape == (64, 16, 20, 4)
    mask = targets.numpy()[..., 3]
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(targets.numpy()[..., :3], x / 255.0, atol=1e-6)
    fractions = mask.mean(axis=(1, 2))
    assert fractions.min() >= 0.1 and fractions.max() <= 0.3
    assert fractions.max() - fractions.min() > 0.1  # the area is drawn, not fixed
    for m in mask:
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        assert m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()  # one filled box
        assert m.sum() == len(rows) * len(cols)
    hidden = mask[..., None] > 0
    np.testing.assert_array_equal(np.where(hidden, 0.0, x), inputs.numpy())


def test_inpainting_mean_fill_uses_visible_pixels():
    x = _images(8, 12, 12, seed=2).astype(np.float32)
    inputs, targets = pretext_transform("inpainting", x, 1, fill="mean", mask="irregular")
    mask = targets.numpy()[..., 3:] > 0
    for b in range(8):
        mean = x[b][~mask[b, ..., 0]].mean(axis=0)
        np.testing.assert_allclose(
            inputs.numpy()[b][mask[b, ..., 0]], np.broadcast_to(mean, (mask[b].sum(), 3)), rtol=1e-4
        )
        np.testing.assert_array_equal(inputs.numpy()[b][~mask[b, ..., 0]], x[b][~mask[b, ..., 0]])


def test_irregular_masks_hide_the_drawn_fraction_along_strokes():
    masks = inpainting_masks((32, 24, 24), 3, mask="irregular", min_area=0.05, max_area=0.4).numpy()
    fractions = masks.mean(axis=(1, 2))
    assert fractions.min() >= 0.05 and fractions.max() <= 0.4
    assert fractions.std() > 0.02
    # Not boxes: the hidden pixels fill well under their bounding box on average.
    fill = [
        m.sum() / (np.ptp(np.flatnonzero(m.any(1))) + 1) / (np.ptp(np.flatnonzero(m.any(0))) + 1)
        for m in masks
    ]
    assert np.mean(fill) < 0.8


@settings(max_examples=40, deadline=None)
@example(3, 3, 0.5, 0.0546875, "irregular", 0)  # 4.5..4.99 pixels: no integer count in range
@given(
    st.integers(3, 40),
    st.integers(3, 40),
    st.floats(0.02, 0.6),
    st.floats(0.05, 0.4),
    st.sampled_from(["rectangle", "irregular"]),
    st.integers(0, 2**31 - 1),
)
def test_mask_fraction_in_range_property(h, w, lo, span, kind, seed):
    hi = min(lo + span, 1.0)
    if kind == "rectangle" and (hi - lo) * h * w < h:  # documented condition for rectangles
        hi = min(1.0, lo + 1.0 / w)
    masks = inpainting_masks((3, h, w), seed, mask=kind, min_area=lo, max_area=hi).numpy()
    counts = masks.sum(axis=(1, 2))
    least, most = np.ceil(lo * h * w - 1e-6), np.floor(hi * h * w + 1e-6)
    if kind == "irregular" and least > most:  # no integer count in range: the documented least
        assert np.all(counts == least)
        return
    assert np.all(counts >= least) and np.all(counts <= most)


# === denoising ===


def test_gaussian_noise_statistics():
    x = np.full((16, 32, 32, 3), 128, np.uint8)
    inputs, targets = pretext_transform("denoising", x, 0, stddev=20.0)
    noise = inputs.numpy() - 128.0
    assert abs(noise.std() - 20.0) < 0.2 and abs(noise.mean()) < 0.2
    np.testing.assert_allclose(targets.numpy(), 128 / 255.0, rtol=1e-6)
    assert (
        pretext_transform("denoising", x, 1, stddev=0.0)[0].numpy().tolist()
        == x.astype(float).tolist()
    )
    white = pretext_transform("denoising", np.full((2, 8, 8, 1), 255, np.uint8), 0)[0].numpy()
    assert white.max() == 255.0 and white.min() < 255.0  # clipped at 255


@pytest.mark.parametrize("noise", ["salt_pepper", "masking"])
def test_impulse_noise_statistics(noise):
    x = np.full((16, 32, 32, 3), 100, np.uint8)
    inputs, targets = pretext_transform("denoising", x, 2, noise=noise, fraction=0.2)
    y = inputs.numpy()
    assert np.all(y == y[..., :1])  # whole pixels, all channels together
    changed = y[..., 0] != 100
    assert abs(changed.mean() - 0.2) < 0.01
    zeros, whites = (y[..., 0] == 0).mean(), (y[..., 0] == 255).mean()
    if noise == "masking":
        assert whites == 0 and zeros == changed.mean()
    else:
        assert abs(zeros - 0.1) < 0.01 and abs(whites - 0.1) < 0.01
    np.testing.assert_allclose(targets.numpy(), x / 255.0, rtol=1e-6)


# === all tasks: shapes, dtypes, seeds, XLA ===

ONE_CHANNEL_TASKS = [t for t in TASKS if t != "colorization"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shapes_and_dtypes(task, dtype):
    x = _images(4, 12, 12, 3, dtype=dtype)
    inputs, targets = pretext_transform(task, x, 0)
    assert inputs.dtype == tf.float32
    expected = {
        "rotation": ((4, 12, 12, 3), (4,), tf.int32),
        "jigsaw": ((4, 12, 12, 3), (4,), tf.int32),
        "colorization": ((4, 12, 12, 1), (4, 12, 12, 2), tf.float32),
        "inpainting": ((4, 12, 12, 3), (4, 12, 12, 4), tf.float32),
        "denoising": ((4, 12, 12, 3), (4, 12, 12, 3), tf.float32),
    }[task]
    assert (inputs.shape, targets.shape, targets.dtype) == expected
    assert 0.0 <= float(tf.reduce_min(inputs)) and float(tf.reduce_max(inputs)) <= 255.0


@pytest.mark.parametrize("task", ONE_CHANNEL_TASKS)
def test_one_channel_images(task):
    inputs, targets = pretext_transform(task, _images(2, 9, 9, 1), 0)
    assert inputs.shape[-1] == 1 and (targets.shape.rank == 1 or targets.shape[-1] in (1, 2))


@pytest.mark.parametrize(
    "task, options",
    [
        ("rotation", {}),
        ("jigsaw", {}),
        ("inpainting", {}),
        ("inpainting", {"mask": "irregular"}),
        ("denoising", {}),
        ("denoising", {"noise": "salt_pepper"}),
    ],
)
def test_same_seed_same_output_other_seed_other_output(task, options):
    x = _images(8, 12, 12)
    a = pretext_transform(task, x, batch_seed(0, 1), **options)
    b = pretext_transform(task, x, batch_seed(0, 1), **options)
    c = pretext_transform(task, x, batch_seed(0, 2), **options)
    for u, v in zip(a, b, strict=False):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, c, strict=False))


def test_seeds_follow_the_contract():
    for s, i in [(0, 0), (7, 3), (123, 10**6)]:
        want = tf.random.experimental.stateless_fold_in(
            tf.constant([s, 0], tf.int64), tf.constant(i, tf.int64)
        )
        np.testing.assert_array_equal(batch_seed(s, i).numpy(), want.numpy())
    np.testing.assert_array_equal(as_seed(5).numpy(), [5, 0])
    x = _images(4, 8, 8)
    np.testing.assert_array_equal(
        pretext_transform("rotation", x, 5)[1].numpy(),
        pretext_transform("rotation", x, tf.constant([5, 0], tf.int32))[1].numpy(),
    )
    with pytest.raises(ValueError, match=r"seed=\[1, 2, 3\]"):
        as_seed([1, 2, 3])


@pytest.mark.slow
def test_compiled_xla_transforms_give_the_same_labels():
    """Labels made inside a jit-compiled train step equal the tf.data ones."""
    x = _images(4, 12, 12)
    seed = batch_seed(3, 17)  # a full 64-bit seed word: XLA would read only its low 32 bits
    # Every random primitive: bounded int draws, float uniforms, normals, seed splits (the
    # other tasks reuse them; XLA compiles on CPU take seconds, so they are left out).
    cases = [
        ("rotation", {}),
        ("inpainting", {}),
        ("denoising", {"noise": "salt_pepper"}),
        ("denoising", {}),
    ]

    def label_all(images, s):
        return [pretext_transform(task, images, s, **options) for task, options in cases]

    compiled = tf.function(label_all, jit_compile=True)(x, seed)
    for (task, _), got, want in zip(cases, compiled, label_all(x, seed), strict=False):
        for u, v in zip(got, want, strict=False):
            np.testing.assert_allclose(u.numpy(), v.numpy(), atol=1e-3, err_msg=task)


# === errors ===


def test_bad_task_and_option_names_and_values_raise_with_the_value():
    x = _images(2, 8, 8)
    with pytest.raises(ValueError, match="task='rotate'"):
        pretext_transform("rotate", x, 0)
    with pytest.raises(ValueError, match="colour=3"):
        pretext_transform("colorization", x, 0, colour=3)
    with pytest.raises(ValueError, match="strength=1"):
        pretext_transform("rotation", x, 0, strength=1)
    with pytest.raises(ValueError, match="mode='bogus'"):
        pretext_transform("colorization", x, 0, mode="bogus")
    with pytest.raises(ValueError, match="noise='speckle'"):
        pretext_transform("denoising", x, 0, noise="speckle")
    with pytest.raises(ValueError, match="max_area=0.1"):
        pretext_transform("inpainting", x, 0, min_area=0.2, max_area=0.1)
    with pytest.raises(ValueError, match="num_permutations=0"):
        pretext_transform("jigsaw", x, 0, num_permutations=0)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\)"):
        pretext_transform("denoising", x[0], 0)
    assert pretext_options("denoising", noise="masking") == {
        "noise": "masking",
        "stddev": 25.0,
        "fraction": 0.1,
    }
    assert set(PRETEXT_TASKS) == set(TASKS)
