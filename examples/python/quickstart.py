#!/usr/bin/env python3
"""The quickstart notebook (examples/quickstart.ipynb) as a script: from per-pixel predictions to a FLAME mesh.

A random head of the synthetic FLAME-layout model is rendered, its UV and normal maps (with noise and 10% outlier
pixels) stand in for the network's predictions, and FLAME plus the camera are fitted to them; then, if you give the
files, the same for a real photo with your FLAME model and converted networks. Nothing is downloaded.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/quickstart.py --out quickstart
    PYTHONPATH=build/python /usr/bin/python3 examples/python/quickstart.py --out quickstart \\
        --photo face.jpg --flame flame2023.npz --uv-weights uv.safetensors --normal-weights normals.safetensors
"""
import argparse
import os

import pixel3dmm
from pixel3dmm import fit, flame


def fit_synthetic_head(out, seed, steps):
    # FLAME's exact array layout (5023 vertices, 300 identity and 100 expression components); with your own FLAME
    # file use flame.FlameModel.load("flame2023.npz") (docs/flame.md).
    model = flame.FlameModel.synthetic()
    config = fit.default_config()  # configs/fit.json; the official single-image fit is 500 + 500 steps
    config["camera"]["steps"] = steps
    config["camera"]["landmark_steps"] = steps // 2
    config["iters"] = steps
    fitter = fit.Fitter(flame.Flame(model), config)

    # Identity, expression, pose and camera drawn at random; the maps rendered at the network's 512 x 512 output
    # size and corrupted like real predictions.
    truth = fit.random_params(1, 300, 100, seed=seed)
    scene = fit.synthetic_target(fitter, truth, size=512, seed=seed)
    target = scene["target"]

    def on_step(entry):
        if entry["step"] % 50 == 0:
            print(f'{entry["stage"]:>6} step {entry["step"]:4d}  loss {entry["total"]:.4g}')

    result = fitter.fit(target, on_step=on_step)
    err = fit.aligned_vertex_error(result.vertices, scene["vertices"], fit.face_region_vertices(model))
    print(f"{result.iterations} steps in {result.seconds:.1f} s; face-region error {err * 1000:.2f} mm")

    # The fitted mesh's shading over the input, the predicted maps beside the rendered ones, and everything the
    # command line writes (meshes, parameters under the official names, pictures, loss log).
    os.makedirs(out, exist_ok=True)
    pixel3dmm.io.save_image(os.path.join(out, "overlay.png"), fit.overlay_image(fitter, result, target))
    pixel3dmm.io.save_image(os.path.join(out, "maps.png"), fit.maps_image(fitter, result, target))
    fit.write_outputs(os.path.join(out, "fit"), fitter, result, target)
    print(f"wrote {out}/overlay.png, {out}/maps.png and {out}/fit/")


def reconstruct_photo(out, photo, flame_file, uv_weights, normal_weights):
    # dlib finds the largest face, the crop is made as the official preprocessing makes it, the networks predict the
    # maps and the fit runs (docs/reconstruction.md).
    rec = pixel3dmm.Reconstructor(flame_file, uv_weights=uv_weights, normal_weights=normal_weights)
    result = rec.reconstruct(photo)
    rec.write(os.path.join(out, "photo"), result)
    print(f"wrote {out}/photo/ (overlay.png, mesh.ply, params.json, ...)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="pixel3dmm-quickstart", help="output folder")
    parser.add_argument("--seed", type=int, default=3, help="seed of the synthetic head")
    parser.add_argument("--steps", type=int, default=150, help="camera and full-fit steps (the official fit: 500)")
    parser.add_argument("--photo", help="a photo to reconstruct (needs --flame, --uv-weights, --normal-weights)")
    parser.add_argument("--flame", help="FLAME model (.npz / .safetensors, see `pixel3dmm convert`)")
    parser.add_argument("--uv-weights", help="converted UV network (python -m pixel3dmm.convert_checkpoint uv.ckpt)")
    parser.add_argument("--normal-weights", help="converted normal network")
    args = parser.parse_args()
    photo_files = [args.photo, args.flame, args.uv_weights, args.normal_weights]
    if any(photo_files) and not all(photo_files):
        parser.error("a photo needs all of --photo, --flame, --uv-weights and --normal-weights")

    print(pixel3dmm.runtime_info())
    fit_synthetic_head(args.out, args.seed, args.steps)
    if args.photo:
        reconstruct_photo(args.out, args.photo, args.flame, args.uv_weights, args.normal_weights)


if __name__ == "__main__":
    main()
