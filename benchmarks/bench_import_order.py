"""The Python package's network speed for both import orders, side by side (issue 27).

    /usr/bin/python3 benchmarks/bench_import_order.py [--threads 2] [--rounds 5] [--backbone NAME]

Runs one child process per import order ("pixel3dmm first": ``import pixel3dmm`` before ``import torch``;
"torch first": the usual notebook order), alternately, ``--rounds`` times each, on official-size networks with
seeded random weights (the official ViT-S/16 DINO architecture at 512 x 512, UV and normals). Each child times one
network forward and one crop's predictions (UV + normals with mirror averaging: 4 forwards) and prints one JSON line;
this script prints the medians over rounds and the ratio torch-first / pixel3dmm-first.

Environment variables the child sees are the parent's, except that PYTHONPATH must find the built package
(``build/python``). ``--child ORDER`` runs one child (used by the parent).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ORDERS = ("pixel3dmm-first", "torch-first")


def child(order, threads, backbone, repeats, bf16):
    if order == "torch-first":
        import torch  # noqa: F401
        import pixel3dmm
    else:
        import pixel3dmm
        import torch
    from pixel3dmm.nn import Pixel3DMMNet, official_config
    from pixel3dmm.predict import Predictor

    pixel3dmm.set_num_threads(threads)
    torch.manual_seed(0)
    uv = Pixel3DMMNet(official_config("uv_map", backbone))
    normals = Pixel3DMMNet(official_config("normals", backbone))
    uv.eval()  # torch's ModuleWrapper.eval returns None
    normals.eval()
    predictor = Predictor(uv_net=uv, normals_net=normals, mirror=True, batch_mirror=False)
    size = predictor.image_size
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))

    def median_seconds(fn):
        fn()  # warm-up: allocator, first-touch, thread start
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    with torch.no_grad():
        forward = median_seconds(lambda: uv(image))
        predict = median_seconds(lambda: predictor.predict(image))
        predict_bf16 = None
        if bf16 and pixel3dmm.predict.cpu_has_native_bf16():
            p16 = Predictor(uv_net=uv, normals_net=normals, mirror=True, batch_mirror=False, precision="bf16")
            predict_bf16 = median_seconds(lambda: p16.predict(image))
    info = pixel3dmm.runtime_info()
    print(json.dumps({"order": order, "forward_s": forward, "predict_s": predict, "predict_bf16_s": predict_bf16,
                      "num_threads": info.get("num_threads"), "blas": info.get("blas_kind")}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="child processes per import order")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per child (after one warm-up)")
    ap.add_argument("--backbone", default="vit_small_patch16_224.dino")
    ap.add_argument("--bf16", action="store_true", help="also time the predictions with precision='bf16'")
    ap.add_argument("--child", choices=ORDERS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.threads, args.backbone, args.repeats, args.bf16)
        return

    results = {o: [] for o in ORDERS}
    for r in range(args.rounds):
        for order in ORDERS:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", order, "--threads", str(args.threads),
                   "--backbone", args.backbone, "--repeats", str(args.repeats)] + (["--bf16"] if args.bf16 else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            line = json.loads(out.strip().splitlines()[-1])
            results[order].append(line)
            print(f"round {r + 1}/{args.rounds} {order}: forward {line['forward_s']:.3f} s, "
                  f"predictions {line['predict_s']:.3f} s", file=sys.stderr, flush=True)

    keys = ("forward_s", "predict_s") + (("predict_bf16_s",) if all(x["predict_bf16_s"] for r in results.values()
                                                                   for x in r) else ())
    med = {o: {k: statistics.median(x[k] for x in results[o]) for k in keys} for o in ORDERS}
    print(f"{args.backbone} at 512 x 512, {args.threads} threads, medians of {args.rounds} processes x "
          f"{args.repeats} calls each")
    print(f"{'':<26}{'pixel3dmm first':>16}{'torch first':>14}{'ratio':>8}")
    names = {"forward_s": "one forward (s)", "predict_s": "predictions, 4 fwd (s)",
             "predict_bf16_s": "predictions, bf16 (s)"}
    for key in keys:
        name = names[key]
        a, b = med["pixel3dmm-first"][key], med["torch-first"][key]
        print(f"{name:<26}{a:>16.3f}{b:>14.3f}{b / a:>8.2f}")
    print(json.dumps({"threads": args.threads, "backbone": args.backbone, "medians": med}))


if __name__ == "__main__":
    main()
