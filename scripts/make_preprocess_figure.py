"""Writes docs/images/preprocess-*.png from Debian's dlib example photos (package libdlib19.1):
the preprocessing result of each photo drawn by pixel3dmm.preprocess.draw_preprocessed, side by side.

    PYTHONPATH=build/python /usr/bin/python3 scripts/make_preprocess_figure.py [out_dir]
"""
import os
import sys

import torch

import pixel3dmm
from pixel3dmm import preprocess as pp

FACES = "/usr/share/doc/libdlib19.1/examples/faces/"
PHOTOS = ["2008_001322.jpg", "Tom_Cruise_avp_2014_4.jpg", "2009_004587.jpg"]


def main(out_dir="docs/images"):
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
    corners = pp.apply_affine(torch.tensor([[-0.5, -0.5], [255.5, 255.5]], dtype=torch.float64),
                              pp.invert_affine(r.affine))
    (x0, y0), (x1, y1) = corners.round().long().tolist()
    H, W = img.shape[2:]
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, W - 1), min(y1, H - 1)
    colour = torch.tensor([1.0, 0.8, 0.0]).view(3, 1)
    for t in range(2):
        img[0, :, y0c + t, x0c:x1c + 1] = colour
        img[0, :, y1c - t, x0c:x1c + 1] = colour
        img[0, :, y0c:y1c + 1, x0c + t] = colour
        img[0, :, y0c:y1c + 1, x1c - t] = colour
    pixel3dmm.io.save_image(os.path.join(out_dir, "preprocess-photo.png"), img)


if __name__ == "__main__":
    main(*sys.argv[1:])
