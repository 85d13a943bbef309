"""The official static crop and PIPNet's face box (pixel3dmm/preprocess/official_crop.h) against the spec's worked
examples and a Python reference of the rule (official_crop_reference.py) on random boxes."""
import numpy as np
import pytest
import torch

from pixel3dmm._C import preprocess as pp

import official_crop_reference as ref


def test_spec_example_sequence():
    # official-preprocessing.md section 4: three 1920 x 1080 frames
    best = [(0.99, 800, 300, 301, 380), (0.98, 812, 310, 299, 377), (0.97, 790, 305, 305, 372)]
    c = pp.official_crop(best, 1080, 1920)
    assert c["mean_box"] == (800, 305, 301, 376)
    assert c["union_box"] == (790, 300, 321, 387)
    assert not c["used_union"] and c["scale"] == 1.42
    assert c["ymin_ymax_xmin_xmax"] == (227, 758, 685, 1216)
    img = torch.zeros(1080, 1920, 3, dtype=torch.uint8)
    assert tuple(pp.official_crop_region(img, c["ymin_ymax_xmin_xmax"]).shape) == (531, 531, 3)


def test_spec_examples_overflow_and_underflow():
    img = torch.zeros(600, 800, 3, dtype=torch.uint8)
    c = pp.official_crop([(0.9, 600, 250, 200, 260)], 600, 800)  # overflow bug: 285 rows x 284 columns
    assert c["ymin_ymax_xmin_xmax"] == (196, 481, 516, 801)
    assert tuple(pp.official_crop_region(img, c["ymin_ymax_xmin_xmax"]).shape) == (285, 284, 3)
    c = pp.official_crop([(0.9, -20, 10, 200, 220)], 600, 800)  # underflow: the box shrinks
    assert c["ymin_ymax_xmin_xmax"] == (40, 275, 0, 235)
    assert tuple(pp.official_crop_region(img, c["ymin_ymax_xmin_xmax"]).shape) == (235, 235, 3)


def test_pad_truncation_trap():
    # 1.42 - 1 = 0.41999999999999993: a 100-pixel box pads 20 per side, not 21; 1.2 - 1 pads 9, not 10
    c = pp.official_crop_from_boxes((300, 300, 100, 100), (300, 300, 100, 100), 1000, 1000)
    assert c["ymin_ymax_xmin_xmax"] == (280, 419, 280, 419)
    assert pp.pipnet_face_box([(0.995, 100, 100, 100, 100)], 512, 512) == (91, 109, 208, 208)


@pytest.mark.parametrize("seed", range(2))
def test_random_sequences_equal_reference(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        height, width = int(rng.integers(40, 1200)), int(rng.integers(40, 1200))
        n = int(rng.integers(1, 6))
        cx, cy, s = rng.uniform(-0.2, 1.2) * width, rng.uniform(-0.2, 1.2) * height, rng.uniform(8, 0.9 * width)
        best = []
        for _ in range(n):
            w, h = int(s * rng.uniform(0.7, 1.3)), int(s * rng.uniform(0.7, 1.5))
            best.append((float(np.float32(rng.uniform(0.75, 1.0))), int(cx + rng.normal(0, 0.1 * s) - w / 2),
                         int(cy + rng.normal(0, 0.1 * s) - h / 2), w, h))
        mean, union = ref.sequence_boxes(best)
        want = ref.crop_box(mean, union, height, width)
        c = pp.official_crop(best, height, width)
        assert c["mean_box"] == tuple(int(v) for v in mean) and c["union_box"] == tuple(int(v) for v in union)
        assert c["ymin_ymax_xmin_xmax"] == want[:4] and c["used_union"] == want[4]
        img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        region = ref.crop_region(img, *want[:4])
        if region.size == 0:
            with pytest.raises(ValueError, match="empty"):
                pp.official_crop_region(torch.from_numpy(img), want[:4])
        else:
            got = pp.official_crop_region(torch.from_numpy(img), want[:4]).numpy()
            assert np.array_equal(got, region)


def test_union_box_chosen_when_the_head_moves():
    best = [(0.9, 100, 100, 100, 100), (0.9, 400, 120, 100, 100)]
    mean, union = ref.sequence_boxes(best)
    c = pp.official_crop(best, 800, 800)
    assert c["used_union"] and c["scale"] == 1.1
    assert c["ymin_ymax_xmin_xmax"] == ref.crop_box(mean, union, 800, 800)[:4]


def test_score_gate_and_empty_input():
    with pytest.raises(ValueError, match="frame 1.*0.74"):
        pp.official_crop([(0.9, 0, 0, 10, 10), (0.74, 0, 0, 10, 10)], 100, 100)
    with pytest.raises(ValueError, match="no frame"):
        pp.official_crop([], 100, 100)


def test_pipnet_box_gate_and_clamp():
    rng = np.random.default_rng(7)
    assert pp.pipnet_face_box([], 512, 512) is None
    below = float(np.nextafter(np.float32(0.99), np.float32(0)))  # 0.98999995f < 0.99
    assert pp.pipnet_face_box([(below, 10, 10, 50, 50)], 512, 512) is None
    assert pp.pipnet_face_box([(float(np.float32(0.99)), 10, 10, 50, 50)], 512, 512) is not None  # 0.99f > 0.99
    for _ in range(300):
        d = [(float(np.float32(rng.uniform(0.985, 1.0))), int(rng.integers(-50, 500)), int(rng.integers(-50, 500)),
              int(rng.integers(1, 400)), int(rng.integers(1, 400)))]
        assert pp.pipnet_face_box(d, 512, 512) == ref.pipnet_box(d, 512, 512)


def test_crop_image_is_a_linear_resize_to_512():
    rng = np.random.default_rng(3)
    img = torch.from_numpy(rng.integers(0, 256, size=(600, 700, 3), dtype=np.uint8))
    same = pp.official_crop_image(img, (10, 522, 20, 532), 512)  # a 512 region: unchanged
    assert torch.equal(same, img[10:522, 20:532])
    flat = torch.full((300, 300, 3), 77, dtype=torch.uint8)
    out = pp.official_crop_image(flat, (0, 299, 0, 299), 512)
    assert out.shape == (512, 512, 3) and bool((out == 77).all())
