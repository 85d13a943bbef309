"""A reference of how the official preprocessing turns SCRFD-10G's nine raw outputs into MICA's five keypoints
(insightface's RetinaFace.forward / detect / nms, MICA's get_center), written for the tests from
official-preprocessing.md section 6.2 and 9.1/9.3. NumPy arrays throughout, in the dtypes the official numpy 1.x
code computes in: float32 decode, threshold, division by det_scale and NMS; float64 centre distances.

NumPy does the sorting (np.argsort, kind 'quicksort', reversed), so the C++ port's emulation of NumPy's tie order
is checked against NumPy itself.
"""
import math

import numpy as np

STRIDES = (8, 16, 32)
ANCHORS = 2


def anchor_centres(input_size, stride):
    """(cells * 2, 2) float32: (x * stride, y * stride) over the grid, row-major, each centre twice in a row."""
    n = input_size // stride
    ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) * np.float32(stride)
    return np.repeat(centres, ANCHORS, axis=0)


def resize_geometry(height, width, input_size=224):
    """RetinaFace.detect for a square input: (new_w, new_h, det_scale as a Python float)."""
    ratio = float(height) / width
    if ratio > 1.0:
        new_h = input_size
        new_w = int(new_h / ratio)
    else:
        new_w = input_size
        new_h = int(new_w * ratio)
    return new_w, new_h, float(new_h) / height


def nms(dets, thresh):
    """RetinaFace.nms on (n, 5) float32 rows (x1, y1, x2, y2, score): kept row indices."""
    thresh = np.float32(thresh)
    x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
    areas = (x2 - x1 + np.float32(1)) * (y2 - y1 + np.float32(1))
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + np.float32(1))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + np.float32(1))
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        order = rest[ovr <= thresh]
    return keep


def decode(outputs, input_size, det_scale, threshold=0.5, nms_threshold=0.4):
    """Nine raw outputs (scores, boxes, keypoints for strides 8, 16, 32) -> (boxes (n, 4), scores (n,),
    keypoints (n, 5, 2)), float32, in NMS order. det_scale is divided in float32 (numpy 1.x: array / Python float)."""
    outputs = [np.asarray(o, dtype=np.float32).reshape(-1, o.shape[-1]) for o in outputs]
    scores, boxes, kps = [], [], []
    for i, stride in enumerate(STRIDES):
        centres = anchor_centres(input_size, stride)
        s = outputs[i][:, 0]
        d = outputs[i + 3] * np.float32(stride)
        e = outputs[i + 6] * np.float32(stride)
        keep = s >= np.float32(threshold)
        cx, cy = centres[keep, 0:1], centres[keep, 1:2]
        d, e = d[keep], e[keep]
        boxes.append(np.concatenate([cx - d[:, 0:1], cy - d[:, 1:2], cx + d[:, 2:3], cy + d[:, 3:4]], axis=1))
        k = np.empty_like(e)
        k[:, 0::2] = cx + e[:, 0::2]
        k[:, 1::2] = cy + e[:, 1::2]
        kps.append(k.reshape(-1, 5, 2))
        scores.append(s[keep])
    scores = np.concatenate(scores)
    scale = np.float32(det_scale)
    boxes = np.concatenate(boxes) / scale
    kps = np.concatenate(kps) / scale
    order = scores.argsort()[::-1]
    pre_det = np.concatenate([boxes, scores[:, None]], axis=1).astype(np.float32)[order]
    keep = nms(pre_det, nms_threshold)
    kept = pre_det[keep]
    return kept[:, :4].reshape(-1, 4), kept[:, 4].copy(), kps[order][keep].reshape(-1, 5, 2)


def centre_face(boxes, height, width):
    """MICA's get_center: index of the box whose centre is nearest (float64) to (width // 2, height // 2), first on
    ties; -1 for no boxes."""
    if len(boxes) == 0:
        return -1
    cx, cy = width // 2, height // 2
    best, j = math.inf, 0
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float32)):
        px = float(x1) + float(abs(x2 - x1)) / 2.0
        py = float(y1) + float(abs(y2 - y1)) / 2.0
        d = math.sqrt((px - cx) ** 2 + (py - cy) ** 2)
        if d < best:
            best, j = d, i
    return j
