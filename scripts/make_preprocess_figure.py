"""Writes docs/images/preprocess-*.png from Debian's dlib example photos (package libdlib19.1):
the preprocessing result of each photo drawn by pixel3dmm.preprocess.draw_preprocessed, side by side; with
--faceboxes (converted FaceBoxesV2 weights, user-brought) also preprocess-official.png: the two crop rules on the
same photos.

    PYTHONPATH=build/python /usr/bin/python3 scripts/make_preprocess_figure.py [out_dir] [--faceboxes F]
"""
import os
import sys

import torch

import pixel3dmm
from pixel3dmm import preprocess as pp

FACES = "/usr/share/doc/libdlib19.1/examples/faces/"
PHOTOS = ["2008_001322.jpg", "Tom_Cruise_avp_2014_4.jpg", "2009_004587.jpg"]


def draw_box(img, x0, y0, x1, y1, colour, width=2):
    """Draws the rectangle with corners (x0, y0), (x1, y1) (pixel indices, clipped to the image) in place."""
    H, W = img.shape[2:]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W - 1), min(y1, H - 1)
    c = torch.tensor(colour).view(3, 1)
    for t in range(width):
        img[0, :, y0 + t, x0:x1 + 1] = c
        img[0, :, y1 - t, x0:x1 + 1] = c
        img[0, :, y0:y1 + 1, x0 + t] = c
        img[0, :, y0:y1 + 1, x1 - t] = c


def crop_corners(r, size):
    """The crop's outer pixel edges in photo pixels, rounded: (x0, y0, x1, y1)."""
    corners = pp.apply_affine(torch.tensor([[-0.5, -0.5], [size - 0.5, size - 0.5]], dtype=torch.float64),
                              pp.invert_affine(r.affine))
    (x0, y0), (x1, y1) = corners.round().long().tolist()
    return x0, y0, x1, y1


def official_figure(out_dir, faceboxes, height=300):
    """Each photo with FaceBoxes' box (red), the official crop (magenta) and the landmarks crop (yellow), above the
    official 256 crop with dlib's landmarks in it (PIPNet's 98 need the user's epoch59.pth)."""
    ours = pp.Preprocessor({"crop_size": 256, "mask_method": "landmarks"})
    official = pp.Preprocessor({"crop_size": 256, "mask_method": "landmarks", "faceboxes": faceboxes})
    columns = []
    for name in PHOTOS:
        path = os.path.join(FACES, name)
        a, b = ours.file(path), official.file(path)
        print(name, "landmarks crop", crop_corners(a, 256), "official crop", crop_corners(b, 256),
              "FaceBoxes", b.box.tolist(), "score", b.score)
        img = pixel3dmm.io.load_image(path).clone()
        draw_box(img, *crop_corners(a, 256), (1.0, 0.8, 0.0))
        draw_box(img, *crop_corners(b, 256), (1.0, 0.0, 1.0))
        draw_box(img, *[int(v) for v in b.box.tolist()], (1.0, 0.0, 0.0))
        w = round(img.shape[3] * height / img.shape[2])
        img = torch.nn.functional.interpolate(img, size=(height, w), mode="area")
        panel = pp.draw_preprocessed(b)
        pad = torch.ones(1, 3, height + panel.shape[2], max(w, panel.shape[3]))
        pad[:, :, :height, :w] = img
        pad[:, :, height:, :panel.shape[3]] = panel
        columns.append(pad)
        columns.append(torch.ones(1, 3, pad.shape[2], 8))
    pixel3dmm.io.save_image(os.path.join(out_dir, "preprocess-official.png"), torch.cat(columns[:-1], 3))


def main(out_dir="docs/images", *rest):
    if rest[:1] == ("--faceboxes",):
        official_figure(out_dir, rest[1])
        return
    p = pp.Preprocessor({"crop_size": 256})
    panels, crops = [], []
    for name in PHOTOS:
        r = p.file(os.path.join(FACES, name))
        panels.append(pp.draw_preprocessed(r))
        crops.append(r.crop)
        print(name, r)
    row = torch.cat(panels, 3)
    pixel3dmm.io.save_image(os.path.join(out_dir, "preprocess-result.png"), row)
    # Where the crop sits in the photo: the photo with the crop square drawn on it.
    r = p.file(os.path.join(FACES, PHOTOS[0]))
    img = pixel3dmm.io.load_image(os.path.join(FACES, PHOTOS[0])).clone()
    draw_box(img, *crop_corners(r, 256), (1.0, 0.8, 0.0))
    pixel3dmm.io.save_image(os.path.join(out_dir, "preprocess-photo.png"), img)


if __name__ == "__main__":
    main(*sys.argv[1:])
