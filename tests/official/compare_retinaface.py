"""Once, outside CI: facer's own RetinaFace (network, batch_detect, post_process, nms) against our reference
(tests/python/retinaface_reference.py) and the C++ port, on seeded random weights (official-preprocessing.md
section 12, step 3). Needs the facer source as a bare git mirror and python3-torchvision (facer's network imports
torchvision.models._utils; a one-off package, not a project dependency).

    PYTHONPATH=build/python:tests/python /usr/bin/python3 tests/official/compare_retinaface.py \
        --facer /work/.mirror/FacePerceiver+facer/repo

`import facer` would pull in timm: an empty module `facer` whose __path__ is the exported facer/ folder stands in,
and only facer.face_detection.retinaface is imported. The state dict is saved with the 'module.' prefix and loaded by
facer's RetinaFaceDetector('mobilenet', model_path=...) (no download), converted for the C++ port by
pixel3dmm.convert_preprocessing. Per trial: a random smooth RGB image, the raw outputs (loc, conf, landmarks) and the
detections (boxes, keypoints, scores) of the three implementations; then crafted raw outputs (ties, the 0.8
threshold, boxes past the border, no face) fed to facer's post_process through a replaced net.forward.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import types

import torch


def export_facer(repo, dst):
    files = subprocess.check_output(["git", "-C", repo, "ls-tree", "-r", "--name-only", "HEAD", "facer/"]).decode()
    for path in files.split():
        if not path.endswith(".py"):
            continue
        out = os.path.join(dst, path)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(subprocess.check_output(["git", "-C", repo, "show", f"HEAD:{path}"]))
    pkg = types.ModuleType("facer")
    pkg.__path__ = [os.path.join(dst, "facer")]
    sys.modules["facer"] = pkg
    fd = types.ModuleType("facer.face_detection")  # its __init__ imports more of facer than needed
    fd.__path__ = [os.path.join(dst, "facer", "face_detection")]
    sys.modules["facer.face_detection"] = fd
    import facer.face_detection.retinaface as rf  # noqa: E402
    return rf


def image(g, h, w):
    low = torch.rand(1, 3, h // 16 + 1, w // 16 + 1, generator=g) * 255
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return img.round().clamp(0, 255).to(torch.uint8)


def as_lists(rects, points, scores):
    return rects.reshape(-1, 4), points.reshape(-1, 5, 2), scores.reshape(-1).float()


def compare(name, a, b, stats):
    ra, pa, sa = a
    rb, pb, sb = b
    same = ra.shape == rb.shape and torch.equal(ra, rb) and torch.equal(pa, pb) and torch.equal(sa, sb)
    d = 0.0
    if ra.shape == rb.shape:
        d = max([0.0] + [float((x - y).abs().max()) for x, y in ((ra, rb), (pa, pb), (sa, sb)) if x.numel()])
    stats.setdefault(name, []).append((same, d, ra.shape[0], rb.shape[0]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--facer", required=True)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reference-only", action="store_true", help="only our Python reference against facer")
    args = ap.parse_args()
    torch.set_num_threads(2)
    import retinaface_reference as ref
    if not args.reference_only:
        from pixel3dmm import convert_preprocessing as cp
        from pixel3dmm._C import preprocess as pp
        import pixel3dmm
        pixel3dmm.set_num_threads(2)

    tmp = tempfile.mkdtemp(prefix="facer-")
    rf = export_facer(args.facer, tmp)
    stats = {}
    raw_diff = {"ours": 0.0, "c++": 0.0}
    for trial in range(args.trials):
        torch.manual_seed(trial)
        official = rf.RetinaFace(cfg=rf.cfg_mnet, phase="test")
        ours = ref.RetinaFace()
        assert set(official.state_dict()) == set(ours.state_dict()), "state-dict names differ"
        ref.randomize_(ours, seed=100 + trial)
        pth = os.path.join(tmp, f"mobilenet0.25_Final_{trial}.pth")
        torch.save({"module." + k: v for k, v in ours.state_dict().items()}, pth)
        det = rf.RetinaFaceDetector("mobilenet", model_path=pth)  # facer's loader: strips 'module.', strict=False
        cpp = None if args.reference_only else pp.RetinaFaceDetector(
            cp.convert_retinaface(pth, os.path.join(tmp, f"r{trial}.safetensors")))
        g = torch.Generator().manual_seed(1000 + trial)
        h, w = (args.size, args.size) if trial % 2 == 0 else (args.size - 37, args.size - 90)
        img = image(g, h, w)
        with torch.no_grad():
            off_raw = det.net(img.float() - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1))
            our_raw = ours(ref.network_input(img))
            cpp_raw = our_raw if cpp is None else cpp.forward(img)
            off = det(img)
        for x, y, z in zip(off_raw, our_raw, cpp_raw):
            raw_diff["ours"] = max(raw_diff["ours"], float((x - y).abs().max()))
            raw_diff["c++"] = max(raw_diff["c++"], float((x - z).abs().max()))
        o = as_lists(off["rects"], off["points"], off["scores"])
        r = ref.detect(ours, img)
        mine = (torch.stack([d[0] for d in r]).reshape(-1, 4) if r else torch.zeros(0, 4),
                torch.stack([d[1] for d in r]).reshape(-1, 5, 2) if r else torch.zeros(0, 5, 2),
                torch.tensor([d[2] for d in r], dtype=torch.float32))
        compare("detect: ours vs facer", mine, o, stats)
        if cpp is not None:
            c = cpp.detect(img)
            compare("detect: c++ vs facer", as_lists(c["rects"], c["points"], c["scores"]), o, stats)

    # Crafted raw outputs through facer's post-processing (net.forward replaced).
    for trial in range(args.trials):
        g = torch.Generator().manual_seed(2000 + trial)
        h, w = 64, 96
        n = ref.anchors(h, w).shape[0]
        loc = torch.zeros(1, n, 4)
        lm = torch.zeros(1, n, 10)
        conf = torch.full((1, n, 2), 0.5)
        pick = torch.randperm(n, generator=g)[:80]
        s = torch.tensor([1.0, 0.95, 0.9, float(torch.tensor(0.8))])[torch.randint(0, 4, (80,), generator=g)]
        if trial == 0:
            s[:] = 0.5  # no face
        conf[0, pick, 1] = s
        conf[0, :, 0] = 1 - conf[0, :, 1]
        loc[0, pick] = torch.randn(80, 4, generator=g) * (3 if trial % 2 else 1)
        lm[0, pick] = torch.randn(80, 10, generator=g) * 4
        det.net.forward = lambda x, loc=loc, conf=conf, lm=lm: (loc, conf, lm)
        off = det(torch.zeros(1, 3, h, w, dtype=torch.uint8))
        o = as_lists(off["rects"], off["points"], off["scores"])
        r = ref.detections(loc[0], conf[0], lm[0], h, w)
        mine = (torch.stack([d[0] for d in r]).reshape(-1, 4) if r else torch.zeros(0, 4),
                torch.stack([d[1] for d in r]).reshape(-1, 5, 2) if r else torch.zeros(0, 5, 2),
                torch.tensor([d[2] for d in r], dtype=torch.float32))
        compare("crafted: ours vs facer", mine, o, stats)
        if not args.reference_only:
            c = pp.retinaface_detections(loc[0], conf[0], lm[0], h, w)
            compare("crafted: c++ vs facer", as_lists(c["rects"], c["points"], c["scores"]), o, stats)

    print(f"raw outputs (loc, conf, landmarks), max |difference| to facer: ours {raw_diff['ours']:.3g}, "
          f"c++ {raw_diff['c++']:.3g}")
    for name, rows in stats.items():
        same = sum(r[0] for r in rows)
        d = max(r[1] for r in rows)
        faces = sum(r[3] for r in rows)
        print(f"{name}: identical in {same}/{len(rows)} trials ({faces} faces from facer), max |difference| {d:.3g}")


if __name__ == "__main__":
    main()
