"""Our own Python reference of the official face parsing step (official-preprocessing.md 7.3, 7.4), written from the
spec: pixel3dmm's replacement of facer's transform (get_face_align_matrix_celebm, the grids) and the label rule of
run_facer_segmentation.py. numpy float32 follows numpy 1.x promotion: a float32 scalar times a Python float is
float64; an array times a float64 scalar stays float32."""
import numpy as np
import torch
import torch.nn.functional as F


def _rot90(v):
    return np.array([-v[1], v[0]], dtype=np.float32)


def quad(points):
    """5 x 2 float32 keypoints -> 4 x 2 float32 corners (c-x-y, c+x-y, c+x+y, c-x+y)."""
    p = np.asarray(points, dtype=np.float32)
    eye = (p[0] + p[1]) * np.float32(0.5) + np.float32(0.5)
    mouth = (p[3] + p[4]) * np.float32(0.5) + np.float32(0.5)
    e2e = p[1] - p[0]
    e2m = mouth - eye
    x = e2e - _rot90(e2m)
    x = x / np.float32(np.hypot(x[0], x[1]))
    scale = max(float(np.hypot(e2e[0], e2e[1])) * 2.0, float(np.hypot(e2m[0], e2m[1])) * 1.8)
    x = (x * np.float32(scale)).astype(np.float32)
    y = _rot90(x)
    c = eye + e2m * np.float32(0.1)
    return np.stack([c - x - y, c + x - y, c + x + y, c - x + y]).astype(np.float32)


def similarity(src, dst):
    """B x n x 2 -> B x 3 x 3: least-squares similarity src -> dst."""
    ms, md = src.mean(dim=1, keepdim=True), dst.mean(dim=1, keepdim=True)
    s, d = src - ms, dst - md
    a1 = s.square().sum([1, 2])
    c1 = (d * s).sum([1, 2])
    c2 = (d[:, :, 0] * s[:, :, 1] - d[:, :, 1] * s[:, :, 0]).sum([1])
    a, b = c1 / a1, c2 / a1
    dx = md[:, 0, 0] - a * ms[:, 0, 0] - b * ms[:, 0, 1]
    dy = md[:, 0, 1] + b * ms[:, 0, 0] - a * ms[:, 0, 1]
    one, zero = torch.ones_like(a1), torch.zeros_like(a1)
    return torch.stack([a, b, dx, -b, a, dy, zero, zero, one], dim=-1).reshape(-1, 3, 3)


def align_matrix(points, bbox_scale_factor=1.25, size=448):
    """N x 5 x 2 -> N x 3 x 3 float32 (image pixels -> aligned pixels)."""
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(-1, 5, 2)
    q = torch.stack([torch.from_numpy(quad(p.numpy())) for p in pts])
    centre = q.mean(dim=1, keepdim=True)
    q = centre + torch.tensor([[[1.5, 1.5]]]) * (q - centre)
    diagonal = torch.linalg.vector_norm(q[:, 0] - q[:, 2], dim=-1)
    factor = bbox_scale_factor + torch.clamp((500 - diagonal) / 150, 0, 1)
    side = torch.reciprocal(factor) * size  # what `size / tensor` computes
    targets = []
    for t in side:
        target = torch.stack([torch.stack([torch.zeros(()), torch.zeros(())]), torch.stack([t, torch.zeros(())]),
                              torch.stack([t, t]), torch.stack([torch.zeros(()), t])])
        target = target + int((size - t) / 2)
        targets.append(target)
    return similarity(q, torch.stack(targets))


def _pixels(batch, h, w):
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(1, h * w, 2).expand(batch, h * w, 2)


def _apply(coords, m):
    homo = torch.cat([coords, torch.ones_like(coords[:, :, :1])], dim=-1)
    out = torch.bmm(homo, m.permute(0, 2, 1))
    return out[:, :, :2] / out[:, :, [2, 2]]


def aligned_grid(m, h, w, size=448):
    b = m.shape[0]
    g = _apply(_pixels(b, size, size), torch.linalg.inv(m)).reshape(b, size, size, 2)
    return g / torch.tensor([w, h]).float().reshape(1, 1, 1, 2) * 2 - 1


def image_grid(m, h, w, size=448):
    b = m.shape[0]
    g = _apply(_pixels(b, h, w), m).reshape(b, h, w, 2)
    return g / torch.tensor([size, size]).float().reshape(1, 1, 1, 2) * 2 - 1


def parse(net, image_u8, points, size=448, bbox_scale_factor=1.25):
    """image 1 x 3 x H x W uint8, points N x 5 x 2 -> (N x C x H x W logits, N x H x W uint8 labels)."""
    images = image_u8.float() / 255.0
    h, w = images.shape[2:]
    m = align_matrix(points, bbox_scale_factor, size)
    n = m.shape[0]
    warped = F.grid_sample(images.expand(n, -1, -1, -1), aligned_grid(m, h, w, size), mode="bilinear",
                           align_corners=False)
    logits, _ = net(warped)
    logits = F.grid_sample(logits, image_grid(m, h, w, size), mode="bilinear", align_corners=False)
    outside = torch.all(logits == 0, dim=1)
    labels = logits.softmax(dim=1).argmax(dim=1).to(torch.uint8)
    labels[outside] = logits.shape[1] + 1
    return logits, labels


class StandInParser(torch.nn.Module):
    """A network with the celebm parser's TorchScript interface, for tests without the real weights:
    n x 3 x S x S in [0, 1] -> (n x 19 x S x S logits, features)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 19, 3, padding=1)

    def forward(self, x):
        y = self.conv(x * 2 - 1) * 4
        return y, y.mean()
