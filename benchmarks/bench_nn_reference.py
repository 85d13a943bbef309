"""Python reference timing for bench_nn: the official architecture written with torch.nn
(tests/python/p3dmm_reference.py), on the weights bench_nn wrote, with the same threads.

    /usr/bin/python3 benchmarks/bench_nn_reference.py WEIGHTS.safetensors [--threads 2] [--budget 2]

Prints one JSON line: {"backbone_ms", "head_ms", "total_ms", "max_abs_diff_vs": ...}.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
import p3dmm_reference as ref  # noqa: E402


def interleaved_medians(fns, budget_s, min_rounds=5):
    """Median milliseconds of each function, measured in rounds (one call of each per round), as bench_nn does."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < min_rounds or time.perf_counter() - start < budget_s:
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    return [sorted(ts)[len(ts) // 2] for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--output", help="where to save the reference output (for the C++ side to compare)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.splitext(args.weights)[0] + ".json") as f:
        cfg = json.load(f)
    b, h = cfg["backbone"], cfg["head"]
    vit = dict(dim=b["embed_dim"], depth=b["depth"], heads=b["num_heads"], patch=b["patch_size"],
               img_size=b["img_size"], layer_scale=b["layer_scale"], reg_tokens=b["reg_tokens"],
               no_embed_class=b["no_embed_class"])
    net = ref.Network(cfg["prediction_type"], vit=vit, n_views=h["n_views"], view_embed_dim=h["view_embed_dim"],
                      embedding_dim=h["embedding_dim"], num_layers=h["num_layers"], num_heads=h["num_heads"])
    missing, unexpected = net.load_state_dict(ref.read_safetensors(args.weights), strict=False)
    unused = ("dir_norm.", "dir_norm_uv.", "uv_enc_mlp.", "vol_decoder.norm.")  # built, never run
    missing = [k for k in missing if not k.startswith(unused)]
    if missing or unexpected:
        raise SystemExit(f"reference: missing weights {missing}, unexpected {unexpected}")
    s = cfg["image_size"]
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0))
    rgb = x.permute(0, 2, 3, 1)[:, None]
    with torch.no_grad():
        feats = net.img_encoder(x)
        # the head: everything after the backbone, as Network.forward does it
        grid = s // b["patch_size"]

        def head():
            f = feats.permute(0, 2, 1).reshape(1, 1, -1, grid, grid)
            if net.n_views > 1:
                f = torch.cat([f, net.view_embed[:, :1].repeat(1, 1, 1, grid, grid)], 2)
            f = net.vol_decoder(f).reshape(1, -1, grid, grid)
            f = torch.nn.functional.gelu(net.t_conv1(f))
            f = torch.nn.functional.gelu(net.t_conv2(f))
            f = torch.nn.functional.gelu(net.t_conv3(f))
            return net.token_2_patch_content(f.permute(0, 2, 3, 1).reshape(1, -1, f.shape[1]))

        backbone, head_ms, total = interleaved_medians([lambda: net.img_encoder(x), head, lambda: net(rgb)],
                                                       3 * args.budget)
        if args.output:
            out = net(rgb)[cfg["prediction_type"]][:, 0]
            with open(args.output, "wb") as f:
                f.write(out.contiguous().numpy().tobytes())
    print(json.dumps({"backbone_ms": backbone, "head_ms": head_ms, "total_ms": total, "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
