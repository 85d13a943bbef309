"""Once, outside CI: insightface's own RetinaFace class (the SCRFD decode MICA's preprocessing runs) and MICA's
get_center against pixel3dmm on the same raw network outputs (official-preprocessing.md section 12, step 6). No ONNX
Runtime: a fake session reports SCRFD-10G's input ([1, 3, '?', '?']) and nine outputs and returns seeded arrays of
the shapes in spec 6.2. Needs the official sources as bare git mirrors and python3-opencv / python3-skimage
(one-off packages, not project dependencies).

    PYTHONPATH=build/python /usr/bin/python3 tests/official/compare_scrfd.py \
        --mica /work/.mirror/Zielon+MICA/repo --insightface /work/.mirror/deepinsight+insightface/repo

The official files are exported to a temporary folder (nothing is copied into the project). Per trial: a random
BGR image (512 x 512 as the official crops, or another size), seeded scores (sigmoid of random logits, many tied:
saturated at 1.0 or quantised to 1/32, some exactly 0.5) and positive distances (every other trial clustered, so
that NMS removes most boxes and the tie order decides which survive). It prints the largest differences
of the blob, boxes, scores and keypoints, and how many trials kept the same detections in the same order and chose
the same centre face. Then the whole detector: a stand-in SCRFD-shaped network (tests/python/scrfd_standin.py,
full width by default) exported to ONNX and run by ScrfdDetector (OpenCV DNN), against torch running the same
network inside insightface's RetinaFace.detect (the fake session calls it) and MICA's get_center.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

STRIDES = (8, 16, 32)
NAMES = ["score_8", "score_16", "score_32", "bbox_8", "bbox_16", "bbox_32", "kps_8", "kps_16", "kps_32"]


def export(repo, commit, path, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(subprocess.check_output(["git", "-C", repo, "show", f"{commit}:{path}"]))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def raw_outputs(rng, clustered, size=224):
    outs = []
    for stride in STRIDES:
        n = (size // stride) ** 2 * 2
        logits = rng.normal(-4.0, 2.0, n).astype(np.float32)
        logits[rng.random(n) < 0.08] += 6.0
        s = (1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
        tied = rng.random(n) < 0.4
        s[tied & (s > 0.5)] = np.round(s[tied & (s > 0.5)] * 32) / 32
        s[rng.random(n) < 0.02] = 1.0
        s[rng.random(n) < 0.02] = 0.5
        outs.append(s.reshape(n, 1))
    # Clustered: similar distances, so neighbouring anchors' boxes overlap and NMS (with its tie order) decides.
    lo, hi = (2.0, 2.6) if clustered else (0.05, 4.0)
    outs += [rng.uniform(lo, hi, ((size // s) ** 2 * 2, 4)).astype(np.float32) for s in STRIDES]
    outs += [rng.normal(0, 2.0, ((size // s) ** 2 * 2, 10)).astype(np.float32) for s in STRIDES]
    return outs


class FakeSession:
    """What RetinaFace reads from an onnxruntime.InferenceSession: input/output metadata and run()."""

    def __init__(self):
        self.outputs, self.blob, self.network = None, None, None

    def get_inputs(self):
        return [types.SimpleNamespace(name="input.1", shape=[1, 3, "?", "?"])]

    def get_outputs(self):
        return [types.SimpleNamespace(name=n) for n in NAMES]

    def run(self, names, feed):
        assert list(names) == NAMES
        self.blob = feed["input.1"]
        if self.network is not None:  # the stand-in network run by torch in place of ONNX Runtime
            with torch.no_grad():
                self.outputs = [o.numpy() for o in self.network(torch.from_numpy(self.blob))]
        return self.outputs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mica", required=True)
    ap.add_argument("--mica-commit", default="af22e7a")
    ap.add_argument("--insightface", required=True)
    ap.add_argument("--insightface-commit", default="668e8d4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--standin-width", type=float, default=1.0)
    ap.add_argument("--standin-images", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="scrfd_official_")
    pkg = "python-package/insightface/"
    export(args.insightface, args.insightface_commit, pkg + "model_zoo/retinaface.py",
           os.path.join(tmp, "retinaface.py"))
    export(args.insightface, args.insightface_commit, pkg + "utils/face_align.py", os.path.join(tmp, "face_align.py"))
    export(args.mica, args.mica_commit, "datasets/creation/util.py", os.path.join(tmp, "mica_util.py"))

    # retinaface.py imports onnx and onnxruntime at module level; neither is used with a given session.
    sys.modules["onnx"] = types.ModuleType("onnx")
    sys.modules["onnxruntime"] = types.ModuleType("onnxruntime")
    rf_mod = load("retinaface_official", os.path.join(tmp, "retinaface.py"))
    face_align = load("face_align_official", os.path.join(tmp, "face_align.py"))
    insightface, utils = types.ModuleType("insightface"), types.ModuleType("insightface.utils")
    utils.face_align, insightface.utils = face_align, utils
    sys.modules["insightface"], sys.modules["insightface.utils"] = insightface, utils
    cu = load("mica_creation_util", os.path.join(tmp, "mica_util.py"))

    from pixel3dmm import identity

    session = FakeSession()
    rf = rf_mod.RetinaFace(session=session)
    rf.prepare(0, input_size=(224, 224), det_thresh=0.5)  # FaceAnalysis.prepare(ctx_id=0, det_size=(224, 224))
    rng = np.random.default_rng(args.seed)
    worst = dict(blob=0.0, boxes=0.0, scores=0.0, kps=0.0)
    same_kept = same_centre = detections = candidates = 0
    sizes = [(512, 512)] * 3 + [(300, 200), (240, 400), (101, 333)]
    for t in range(args.trials):
        h, w = sizes[t % len(sizes)]
        img_bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        session.outputs = raw_outputs(rng, clustered=t % 2 == 1)
        det, kpss = rf.detect(img_bgr, max_num=0, metric="default")
        rgb = torch.from_numpy(np.ascontiguousarray(img_bgr[:, :, ::-1]))
        blob, det_scale = identity.scrfd_input(rgb)
        worst["blob"] = max(worst["blob"], float(np.abs(blob.numpy() - session.blob).max()))
        ours = identity.decode_scrfd(session.outputs, 224, det_scale)
        detections += len(det)
        candidates += sum(int((o >= np.float32(0.5)).sum()) for o in session.outputs[:3])
        if len(ours) == len(det):
            worst["boxes"] = max(worst["boxes"], float(np.abs(ours.boxes.numpy() - det[:, :4]).max(initial=0)))
            worst["scores"] = max(worst["scores"], float(np.abs(ours.scores.numpy() - det[:, 4]).max(initial=0)))
            worst["kps"] = max(worst["kps"], float(np.abs(ours.keypoints.numpy() - kpss).max(initial=0)))
            same_kept += int(np.array_equal(ours.boxes.numpy(), det[:, :4])
                             and np.array_equal(ours.keypoints.numpy(), kpss))
        else:
            print(f"trial {t}: {len(ours)} kept detections vs official {len(det)}")
        official_centre = cu.get_center(det, img_bgr) if len(det) else -1
        same_centre += int(identity.centre_face(ours, h, w) == official_centre)
    print(f"{args.trials} trials: {candidates} anchors with score >= 0.5, {detections} kept by the official NMS "
          f"(insightface {args.insightface_commit}, MICA {args.mica_commit}, numpy {np.__version__})")
    print(f"blob (scrfd_input vs RetinaFace.detect's blobFromImage): max |diff| {worst['blob']:.3e}")
    print(f"boxes max |diff| {worst['boxes']:.3e} px, scores {worst['scores']:.3e}, keypoints {worst['kps']:.3e} px")
    print(f"same kept detections in the same order: {same_kept} / {args.trials}; "
          f"same centre face (MICA get_center): {same_centre} / {args.trials}")

    # The whole detector: a stand-in SCRFD-shaped network (tests/python/scrfd_standin.py) exported to ONNX and run
    # by pixel3dmm's ScrfdDetector (OpenCV DNN), against torch running the same network inside insightface's
    # RetinaFace.detect + MICA's get_center.
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import scrfd_standin

    onnx_path = os.path.join(tmp, "standin.onnx")
    session.network = scrfd_standin.make_standin(onnx_path, width=args.standin_width, seed=args.seed, score_bias=1.0)
    detector = identity.ScrfdDetector(onnx_path)
    raw = dict(scores=0.0, boxes=0.0, kps=0.0)
    worst = dict(boxes=0.0, scores=0.0, kps=0.0, centre_kps=0.0)
    same_count = same_centre = detections = 0
    for t in range(args.standin_images):
        h, w = sizes[t % len(sizes)]
        small = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(args.seed * 1000 + t))
        img = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]
        img_bgr = np.ascontiguousarray((img * 255).round().byte().permute(1, 2, 0).numpy())
        det, kpss = rf.detect(img_bgr, max_num=0, metric="default")
        rgb = torch.from_numpy(np.ascontiguousarray(img_bgr[:, :, ::-1]))
        ours_raw = detector.forward(torch.from_numpy(session.blob))
        for i, key in enumerate(["scores"] * 3 + ["boxes"] * 3 + ["kps"] * 3):
            raw[key] = max(raw[key], float(np.abs(ours_raw[i].numpy() - session.outputs[i]).max()))
        ours = detector.detect(rgb)
        detections += len(det)
        if len(ours) == len(det):
            same_count += 1
            worst["boxes"] = max(worst["boxes"], float(np.abs(ours.boxes.numpy() - det[:, :4]).max(initial=0)))
            worst["scores"] = max(worst["scores"], float(np.abs(ours.scores.numpy() - det[:, 4]).max(initial=0)))
            worst["kps"] = max(worst["kps"], float(np.abs(ours.keypoints.numpy() - kpss).max(initial=0)))
        else:
            print(f"stand-in image {t}: {len(ours)} kept detections vs official {len(det)}")
        c_off = cu.get_center(det, img_bgr) if len(det) else -1
        c_ours = identity.centre_face(ours, h, w)
        same_centre += int(c_ours == c_off)
        if c_ours == c_off and c_off >= 0:
            d_kps = float(np.abs(ours.keypoints[c_ours].numpy() - kpss[c_off]).max())
            worst["centre_kps"] = max(worst["centre_kps"], d_kps)
    print(f"stand-in SCRFD (width {args.standin_width}), {args.standin_images} images, {detections} official "
          f"detections: raw outputs OpenCV DNN vs torch max |diff| scores {raw['scores']:.3e}, box distances "
          f"{raw['boxes']:.3e}, keypoint distances {raw['kps']:.3e}")
    print(f"same number kept: {same_count} / {args.standin_images}; boxes max |diff| {worst['boxes']:.3e} px, "
          f"scores {worst['scores']:.3e}, keypoints {worst['kps']:.3e} px; same centre face {same_centre} / "
          f"{args.standin_images}, its keypoints max |diff| {worst['centre_kps']:.3e} px")


if __name__ == "__main__":
    main()
