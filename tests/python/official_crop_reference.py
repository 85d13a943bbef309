"""A reference of the official static crop (pixel3dmm pipnet_utils: demo_image with static_crop, get_cstm_crop) and
of PIPNet's face box on the crop, written for the tests from official-preprocessing.md sections 4 and 5.1, with
NumPy 1.x arithmetic as the official code gets it: boxes are np.int32 scalars, pads float64, crops numpy slices.

Boxes are (x, y, width, height) as FaceBoxes returns them; detections are (score, x, y, width, height)."""
import numpy as np


def sequence_boxes(best):
    """Per-frame best detections [(score, x, y, w, h)] -> (mean box, union box), each 4 np.int32 values."""
    xs = np.array([d[1] for d in best])
    ys = np.array([d[2] for d in best])
    ux, uy = np.min(xs, axis=0), np.min(ys, axis=0)
    uw = np.max(np.array([d[3] + d[1] - ux for d in best]), axis=0)
    uh = np.max(np.array([d[4] + d[2] - uy for d in best]), axis=0)
    mean = np.stack([np.mean(xs, axis=0), np.mean(ys, axis=0), np.mean(np.array([d[3] for d in best]), axis=0),
                     np.mean(np.array([d[4] for d in best]), axis=0)], axis=0).astype(np.int32)
    union = np.stack([ux, uy, uw, uh], axis=0).astype(np.int32)
    return [mean[i] for i in range(4)], [union[i] for i in range(4)]


def crop_box(mean, union, height, width):
    """-> (ymin, ymax, xmin, xmax, used_union) exactly as get_cstm_crop computes them."""
    box, scale = mean, 1.42
    if mean[2] * 1.42 * mean[3] * 1.42 < union[2] * 1.1 * union[3] * 1.1:
        box, scale = union, 1.1
    x, y, w, h = box
    if w > h:
        y -= (w - h) // 2
        h = w
    if w < h:
        x -= (h - w) // 2
        w = h
    xmax = x + w - 1
    ymax = y + h - 1
    x -= int(w * (scale - 1) / 2)
    y -= int(h * (scale - 1) / 2)
    xmax += int(w * (scale - 1) / 2)
    ymax += int(h * (scale - 1) / 2)
    if x < 0 or y < 0:
        m = min(x, y)
        x += -m
        y += -m
    if xmax > width - 1 or ymax > height - 1:
        m = max(xmax - width - 1, ymax - height - 1)
        xmax -= m
        ymax -= m
    return int(y), int(ymax), int(x), int(xmax), scale == 1.1


def crop_region(image, ymin, ymax, xmin, xmax):
    return image[ymin:ymax, xmin:xmax]


def pipnet_box(detections, height, width):
    """Best detection (highest score first) -> (x, y, xmax, ymax) after the 1.2 growth, the top moved down and
    clamping; None below 0.99."""
    if not detections or detections[0][0] < 0.99:
        return None
    _, x, y, w, h = detections[0]
    xmax, ymax = x + w - 1, y + h - 1
    x -= int(w * (1.2 - 1) / 2)
    y += int(h * (1.2 - 1) / 2)
    xmax += int(w * (1.2 - 1) / 2)
    ymax += int(h * (1.2 - 1) / 2)
    return max(x, 0), max(y, 0), min(xmax, width - 1), min(ymax, height - 1)
