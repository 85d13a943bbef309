"""The C++ network against a torch.nn reference of the official architecture, through the checkpoint converter.

Random-weight networks are saved as Lightning-style checkpoints (fake OmegaConf config), converted with
``pixel3dmm.convert_checkpoint``, loaded by the C++ loader and compared with the reference forward pass.
"""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pixel3dmm
from pixel3dmm import convert_checkpoint as cc
from pixel3dmm import nn as pnn
from pixel3dmm import predict as ppred

import p3dmm_reference as ref

TOL = 1e-4


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)


def _rgb(seed, size=512, batch=1):
    g = torch.Generator().manual_seed(seed)
    # 8-bit values, smooth enough to look like an image: a low-resolution pattern upsampled, quantised
    low = torch.rand(batch, 3, 16, 16, generator=g)
    img = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (img * 255).round() / 255


def _make(tmp_path, name, prediction_type, backbone, seed, **cfg_overrides):
    torch.manual_seed(seed)
    net = ref.Network(prediction_type, vit=ref.vit_kwargs(backbone))
    ref.randomize_(net, seed)  # no eval(): as the official inference (and torch 1.13 MHA without bias fails in eval)
    ckpt = str(tmp_path / f"{name}.ckpt")
    ref.save_lightning_checkpoint(ckpt, net, ref.official_cfg(net, backbone, **cfg_overrides))
    return net, ckpt


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("src,dst", [((14, 14), (32, 32)), ((37, 37), (16, 16)), ((14, 14), (9, 20))])
def test_resize_bicubic_antialias_equals_interpolate(src, dst):
    x = torch.randn(1, 24, *src, generator=torch.Generator().manual_seed(1))
    want = F.interpolate(x, size=dst, mode="bicubic", antialias=True, align_corners=False)
    got = pnn.resize_bicubic_antialias(x, *dst)
    assert got.shape == want.shape
    assert torch.equal(got, want)
    # and it is not plain bicubic (a = -0.75), which timm does not use
    plain = F.interpolate(x, size=dst, mode="bicubic", align_corners=False)
    assert (plain - got).abs().max() > 1e-3


@pytest.mark.parametrize("prefix,old,new", [(1, 14, 32), (0, 37, 32), (5, 37, 16)])
def test_resample_abs_pos_embed_equals_timm(prefix, old, new):
    pos = torch.randn(1, prefix + old * old, 64, generator=torch.Generator().manual_seed(2))
    want = ref.resample_abs_pos_embed(pos, (new, new), (old, old), prefix)
    got = pnn.resample_abs_pos_embed(pos, (new, new), (old, old), prefix)
    assert got.shape == (1, prefix + new * new, 64)
    assert torch.equal(got[:, :prefix], pos[:, :prefix])
    assert torch.allclose(got, want, atol=1e-6, rtol=0)
    # same grid: returned unchanged, as timm
    assert torch.equal(pnn.resample_abs_pos_embed(pos, (old, old), (old, old), prefix), pos)


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone,prediction_type", [("vit_small_patch16_224.dino", "uv_map"),
                                                      ("vit_base_patch16_224.dino", "normals")])
def test_converted_network_matches_reference(tmp_path, backbone, prediction_type):
    net, ckpt = _make(tmp_path, "net", prediction_type, backbone, seed=3)
    weights, config = cc.convert(ckpt)
    assert weights == str(tmp_path / "net.safetensors") and os.path.isfile(config)
    cpp = pnn.load_network(weights)
    assert cpp.config["backbone"]["name"] == backbone
    assert cpp.config["prediction_type"] == prediction_type

    x = _rgb(4)
    both = torch.cat([x, torch.flip(x, dims=[3])], 0)  # the image and its mirror: one forward on each side
    with torch.no_grad():
        want = net(both.permute(0, 2, 3, 1)[:, None])[prediction_type][:, 0]
        got = cpp(both)
    assert want.shape == got.shape == (2, ref.PRED_DIMS[prediction_type], 512, 512)
    # without mirroring: the network alone
    assert (got - want).abs().max().item() < TOL

    # with the official mirror averaging (the Predictor's rule, checked end to end on small networks below)
    flipped = torch.flip(want[1:], dims=[3]).clone()
    flipped[:, 0] *= -1
    if prediction_type == "uv_map":
        flipped[:, 0] += 2 * 0.0075
    want_avg = (want[:1] + flipped) / 2
    got_avg = (got[:1] + ppred.unmirror(got[1:], prediction_type)) / 2
    assert (got_avg - want_avg).abs().max().item() < TOL
    # the PNG the official inference writes, from its output and ours: equal up to a rare 8-bit truncation flip
    png = (ppred.uv_png if prediction_type == "uv_map" else ppred.normals_png)(got_avg)[0].numpy().astype(int)
    d = np.abs(png - ref.official_png(prediction_type, want_avg[0]).astype(int))
    assert d.max() <= 1 and (d > 0).mean() < 1e-3


def test_predictor_loads_both_networks_and_resizes_inputs(tmp_path):
    small = dict(dim=64, depth=2, heads=1, patch=16, img_size=224)
    nets = {}
    for kind in ("uv_map", "normals"):
        torch.manual_seed(5)
        net = ref.Network(kind, vit=small, embedding_dim=32, num_layers=1, num_heads=2)
        ref.randomize_(net, 5)
        ckpt = str(tmp_path / f"{kind}.ckpt")
        ref.save_lightning_checkpoint(ckpt, net, ref.official_cfg(net, "vit_small_patch16_224.dino"))
        nets[kind] = (net, ckpt)
    # a ViT with 64 channels is not what 'vit_small' promises: the converter says so
    with pytest.raises(ValueError, match="embed_dim"):
        cc.convert(nets["uv_map"][1])
    assert not os.path.exists(tmp_path / "uv_map.safetensors")
    # bypassing the name check (written by hand), the C++ side still loads it
    for kind, (net, ckpt) in nets.items():
        sd = {k[4:]: v for k, v in torch.load(ckpt)["state_dict"].items() if k.startswith("net.")}
        cfg = pnn.official_config(kind)
        cfg["backbone"].update(embed_dim=64, depth=2, num_heads=1)
        cfg["head"].update(in_dim=64, embedding_dim=32, num_layers=1, num_heads=2)
        cfg["image_size"] = 128  # 8 x 8 tokens: keeps the test fast
        cpp = pnn.Pixel3DMMNet(cfg)
        cpp.load_official_state_dict(sd)
        pnn.save_network(cpp, str(tmp_path / f"{kind}.safetensors"))
    p = ppred.Predictor(uv=str(tmp_path / "uv_map.safetensors"), normals=str(tmp_path / "normals.safetensors"))
    assert p.image_size == 128
    x = _rgb(6, size=300, batch=2)
    prepared = p.prepare(x)
    assert prepared.shape == (2, 3, 128, 128)
    out = p.predict(x)
    assert out["uv"].shape == (2, 2, 128, 128) and out["normals"].shape == (2, 3, 128, 128)
    for kind, key in (("uv_map", "uv"), ("normals", "normals")):
        want = ref.predict_official(nets[kind][0], prepared.permute(0, 2, 3, 1))  # two passes, un-flip, average
        assert (out[key + "_raw"] - want).abs().max().item() < TOL
    want_uv = torch.clamp((out["uv_raw"] + 1) / 2, 0, 1)
    assert torch.equal(out["uv"], want_uv)
    n = out["normals_raw"] / out["normals_raw"].norm(dim=1, keepdim=True)
    assert torch.allclose(out["normals"], torch.stack([n[:, 0], -n[:, 2], -n[:, 1]], 1), atol=1e-6, rtol=0)
    assert torch.allclose(out["normals"].norm(dim=1), torch.ones(2, 128, 128), atol=1e-5)
    no_mirror = ppred.Predictor(uv_net=pnn.load_network(str(tmp_path / "uv_map.safetensors")), mirror=False)
    with torch.no_grad():
        direct = nets["uv_map"][0](prepared.permute(0, 2, 3, 1)[:, None])["uv_map"][:, 0]
    assert (no_mirror.predict(x)["uv_raw"] - direct).abs().max().item() < TOL
    assert no_mirror.precision == "float32"
    # bfloat16: close to float32 on a CPU that has it, a clear refusal elsewhere
    uv_path = str(tmp_path / "uv_map.safetensors")
    if ppred.cpu_has_native_bf16():
        p16 = ppred.Predictor(uv=uv_path, precision="bf16")
        assert p16.precision == "bf16" and "precision=bf16" in repr(p16)
        err = (p16.predict(x)["uv_raw"] - out["uv_raw"]).abs().max().item()
        assert 0 < err < 0.1 * out["uv_raw"].abs().max().item()
    else:
        with pytest.raises(ValueError, match="native bfloat16"):
            ppred.Predictor(uv=uv_path, precision="bf16")
    with pytest.raises(ValueError, match="float32 or bf16"):
        ppred.Predictor(uv=uv_path, precision="half")


# ---------------------------------------------------------------------------------------------------------------
def test_png_encodings_equal_the_official_ones():
    g = torch.Generator().manual_seed(7)
    raw_uv = torch.rand(2, 2, 64, 64, generator=g) * 2.4 - 1.2  # reaches past [-1, 1]: clamping matters
    raw_uv[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.0, 254.5 / 255 * 2 - 1])
    raw_n = torch.randn(2, 3, 64, 64, generator=g)
    for b in range(2):
        assert np.array_equal(ppred.uv_png(raw_uv)[b].numpy(), ref.official_png("uv_map", raw_uv[b]))
        assert np.array_equal(ppred.normals_png(raw_n)[b].numpy(), ref.official_png("normals", raw_n[b]))
    # the side-by-side picture: trunc(255 * [rgb | prediction])
    rgb = _rgb(8, size=64)
    sbs = ppred.side_by_side_png(rgb, ppred.uv_png(raw_uv[:1]))
    want = (np.concatenate([rgb[0].permute(1, 2, 0).numpy(), ref.official_png("uv_map", raw_uv[0]) / 255.0],
                           axis=1))
    assert sbs.shape == (1, 64, 128, 3)
    assert np.array_equal(sbs[0, :, :64].numpy(), (rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert np.array_equal(sbs[0, :, 64:].numpy(), (want[:, 64:] * 255).round().astype(np.uint8))


def test_write_png_rgb8_round_trips(tmp_path):
    cv2 = pytest.importorskip("cv2")
    px = torch.randint(0, 256, (5, 7, 3), dtype=torch.uint8)
    path = str(tmp_path / "a.png")
    ppred.write_png_rgb8(path, px)
    back = cv2.imread(path, cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert np.array_equal(back, px.numpy())


def test_unmirror_follows_the_official_rules():
    out = torch.randn(1, 2, 4, 6)
    got = ppred.unmirror(out, "uv_map")
    assert torch.allclose(got[:, 0], -torch.flip(out[:, 0], dims=[2]) + 0.015)
    assert torch.equal(got[:, 1], torch.flip(out[:, 1], dims=[2]))
    n = torch.randn(1, 3, 4, 6)
    gn = ppred.unmirror(n, "normals")
    assert torch.equal(gn[:, 0], -torch.flip(n[:, 0], dims=[2]))
    assert torch.equal(gn[:, 1:], torch.flip(n[:, 1:], dims=[3]))


# ---------------------------------------------------------------------------------------------------------------
def _pil_resize_reference(img, out_h, out_w):
    """Pillow's 8-bit BICUBIC resize (libImaging/Resample.c), transcribed to NumPy for the test."""
    prec = 22

    def coeffs(n_in, n_out):
        scale = n_in / n_out
        fs = max(scale, 1.0)
        support = 2.0 * fs
        out = []
        for xx in range(n_out):
            center = (xx + 0.5) * scale
            xmin = max(int(center - support + 0.5), 0)
            xmax = min(int(center + support + 0.5), n_in) - xmin
            ws = []
            for x in range(xmax):
                t = abs((x + xmin - center + 0.5) / fs)
                ws.append(((1.5 * t - 2.5) * t * t + 1) if t < 1 else ((((t - 5) * t + 8) * t - 4) * -0.5 if t < 2 else 0))
            tot = sum(ws)
            ws = [w / tot if tot else w for w in ws]
            out.append((xmin, [int(-0.5 + w * (1 << prec)) if w < 0 else int(0.5 + w * (1 << prec)) for w in ws]))
        return out

    def clip(v):
        return min(max(v >> prec, 0), 255)

    h, w = img.shape
    cv, ch = coeffs(h, out_h), coeffs(w, out_w)
    y0 = cv[0][0] if out_h != h else 0
    y1 = cv[-1][0] + len(cv[-1][1]) if out_h != h else h
    tmp = np.zeros((y1 - y0, out_w), np.int64)
    for y in range(y0, y1):
        for xx, (xmin, ks) in enumerate(ch):
            tmp[y - y0, xx] = clip((1 << (prec - 1)) + sum(int(img[y, xmin + i]) * k for i, k in enumerate(ks))) \
                if out_w != w else img[y, xx]
    out = np.zeros((out_h, out_w), np.uint8)
    for yy, (ymin, ks) in enumerate(cv):
        for xx in range(out_w):
            out[yy, xx] = clip((1 << (prec - 1)) + sum(int(tmp[ymin - y0 + i, xx]) * k for i, k in enumerate(ks))) \
                if out_h != h else tmp[yy, xx]
    return out


@pytest.mark.parametrize("size,out", [((13, 17), (9, 23)), ((20, 11), (31, 5)), ((8, 8), (8, 3))])
def test_pil_resize_matches_pillow_algorithm(size, out):
    img = torch.randint(0, 256, (1, 2, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
    got = pnn.resize_pil_bicubic_u8(img, *out)
    for c in range(2):
        assert np.array_equal(got[0, c].numpy(), _pil_resize_reference(img[0, c].numpy(), *out))


def test_pil_resize_is_close_to_torch_antialiased_bicubic():
    # PyTorch's antialiased bicubic implements the same filter in floating point: within 1-2 levels
    x = _rgb(10, size=300)
    for size in (512, 200):
        got = pnn.resize_pil_bicubic(x, size, size)
        want = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        d = (got - want.clamp(0, 1)).abs() * 255
        assert d.max() <= 2.0 and d.mean() < 0.5
    assert torch.equal(pnn.resize_pil_bicubic(x, 300, 300), x)


# ---------------------------------------------------------------------------------------------------------------
def test_backbone_weights_load_alone(tmp_path):
    """timm .safetensors (bare names) into the backbone: DINOv2 layout with registers (narrow, 2 blocks),
    position embedding resampled 37x37 -> 16x16."""
    kw = dict(ref.vit_kwargs("vit_small_patch14_reg4_dinov2"), dim=64, depth=2, heads=1)
    torch.manual_seed(11)
    vit = ref.VisionTransformer(**kw)
    ref.randomize_(vit, 11).eval()
    path = str(tmp_path / "dinov2.safetensors")
    cc._write_safetensors_py(path, {k: v.detach() for k, v in vit.state_dict().items()}, {"format": "pt"})
    cfg = pnn.official_config("uv_map", "vit_small_patch14_reg4_dinov2")
    assert cfg["backbone"]["reg_tokens"] == 4 and cfg["backbone"]["no_embed_class"] and cfg["image_size"] == 448
    assert cfg["backbone"]["layer_scale"] and cfg["backbone"]["img_size"] == 518
    cfg["backbone"].update(embed_dim=64, depth=2, num_heads=1)
    cfg["head"].update(in_dim=64, embedding_dim=32, num_layers=1, num_heads=2)
    net = pnn.Pixel3DMMNet(cfg)
    net.load_backbone_weights(path)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        want = vit.forward_features(x)
        got = net.backbone_tokens(x)
    assert got.shape == want.shape == (1, 5 + 16 * 16, 64)
    assert (got - want).abs().max().item() < TOL

    # strict: a missing and an unexpected tensor are both named
    sd = {k: v.detach() for k, v in vit.state_dict().items()}
    sd["blocks.1.extra.weight"] = sd.pop("blocks.1.ls2.gamma")
    cc._write_safetensors_py(path, sd, {})
    with pytest.raises(ValueError) as e:
        net.load_backbone_weights(path)
    assert "blocks.1.ls2.gamma" in str(e.value) and "blocks.1.extra.weight" in str(e.value)


# ---------------------------------------------------------------------------------------------------------------
TINY = dict(dim=64, depth=2, heads=1, patch=16, img_size=224)  # narrow: for tests that never pass the name check


def _tiny_ckpt(tmp_path, prediction_type="uv_map", **kw):
    torch.manual_seed(13)
    net = ref.Network(prediction_type, vit=TINY, embedding_dim=32, num_layers=1, num_heads=2)
    ckpt = str(tmp_path / "tiny.ckpt")
    ref.save_lightning_checkpoint(ckpt, net, ref.official_cfg(net, "vit_small_patch16_224.dino"), **kw)
    return net, ckpt


def test_mismatched_checkpoint_lists_every_offending_tensor(tmp_path):
    net, _ = _tiny_ckpt(tmp_path)
    sd = {"net." + k: v for k, v in net.state_dict().items()}
    cfg = pnn.official_config("uv_map")
    cfg["backbone"].update(embed_dim=64, depth=2, num_heads=1)
    cfg["head"].update(in_dim=64, embedding_dim=32, num_layers=1, num_heads=2)
    cpp = pnn.Pixel3DMMNet(cfg)
    damaged = {k[4:]: v for k, v in sd.items()}
    del damaged["vol_decoder.layers.0.norm2.weight"]
    damaged["t_conv1.bias"] = torch.zeros(31)
    damaged["vol_decoder.layers.0.self_attn.in_proj_bias"] = torch.zeros(96)
    with pytest.raises(ValueError) as e:
        cpp.load_official_state_dict(damaged, "damaged.safetensors")
    msg = str(e.value)
    for fragment in ("damaged.safetensors", "missing: vol_decoder.layers.0.norm2.weight",
                     "unexpected: vol_decoder.layers.0.self_attn.in_proj_bias", "t_conv1.bias (expected [32], found [31])"):
        assert fragment in msg
    # the unused official modules are no surprise
    assert "dir_norm" not in msg and "uv_enc_mlp" not in msg


def test_converter_refuses_wrong_head_type(tmp_path):
    net, _ = _tiny_ckpt(tmp_path, prediction_type="normals")
    ckpt = str(tmp_path / "wrong.ckpt")
    cfg = ref.official_cfg(net, "vit_small_patch16_224.dino", prediction_type="uv_map")
    ref.save_lightning_checkpoint(ckpt, net, cfg)
    with pytest.raises(ValueError, match=r"token_2_patch_content.weight has 12 rows.*'uv_map' has 2"):
        cc.network_config({k[4:]: v for k, v in torch.load(ckpt)["state_dict"].items() if k.startswith("net.")},
                          cc.hyper_parameters(cc.load_checkpoint(ckpt)), ckpt)


def test_converter_cli_reports_missing_tensors_and_leaves_nothing(tmp_path):
    torch.manual_seed(14)
    net = ref.Network("uv_map", vit=ref.vit_kwargs("vit_small_patch16_224.dino"), embedding_dim=32, num_layers=1,
                      num_heads=2)
    ckpt = str(tmp_path / "uv.ckpt")
    ref.save_lightning_checkpoint(ckpt, net, ref.official_cfg(net, "vit_small_patch16_224.dino"),
                                  drop=["net.img_encoder.model.blocks.5.attn.proj.bias", "net.t_conv2.weight"])
    r = subprocess.run([sys.executable, "-m", "pixel3dmm.convert_checkpoint", ckpt, "-o", str(tmp_path / "o.safetensors")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "img_encoder.model.blocks.5.attn.proj.bias" in r.stderr and "t_conv2.weight" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["uv.ckpt"]


@pytest.mark.parametrize("flag", ["use_uv_enc", "use_pos_enc", "prior_input", "use_plucker"])
def test_converter_refuses_checkpoints_needing_extra_inputs(flag):
    net = ref.Network("uv_map", vit=TINY, embedding_dim=32, num_layers=1, num_heads=2)
    hp = ref.official_cfg(net, "vit_small_patch16_224.dino", **{flag: True})
    with pytest.raises(ValueError, match=flag):
        cc.network_config({}, hp, "x.ckpt")


def test_converter_reads_omegaconf_stubs_and_resolves_interpolations(tmp_path):
    _, ckpt = _tiny_ckpt(tmp_path)
    ck = cc.load_checkpoint(ckpt)
    assert "vertex_weight_mask" in ck["state_dict"] and ck["optimizer_states"]
    hp = cc.hyper_parameters(ck, ckpt)
    assert hp["model"]["encoder_backbone"] == "vit_small_patch16_224.dino"
    assert hp["train_dataset"]["n_group"] == "${n_views}"
    assert cc._Config(hp, ckpt).get("train_dataset.n_group") == 2
    hp["model"]["num_layers"] = "${model.missing_key}"
    with pytest.raises(ValueError, match="model.missing_key"):
        cc._Config(hp, ckpt).get("model.num_layers")


def test_converter_refuses_unknown_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = str(tmp_path / "evil.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": {"cfg": Evil()}}, path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        cc.load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        cc.load_checkpoint(str(tmp_path / "nope.ckpt"))
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.ckpt"):
        cc.load_checkpoint(str(tmp_path / "bad.ckpt"))


def test_network_is_a_torch_module(tmp_path):
    cfg = pnn.official_config("normals")
    cfg["backbone"].update(embed_dim=64, depth=1, num_heads=1)
    cfg["head"].update(in_dim=64, embedding_dim=32, num_layers=1, num_heads=2)
    cfg["image_size"] = 64
    net = pnn.Pixel3DMMNet(cfg)
    assert isinstance(net, torch.nn.Module)
    sd = net.state_dict()
    assert "backbone.blocks.0.attn.qkv.weight" in sd and "head.vol_decoder.layers.0.self_attn.in_proj_weight" in sd
    assert sum(p.numel() for p in net.parameters()) == sum(v.numel() for v in sd.values())
    # trainable from Python: gradients reach every parameter
    net.train()
    net(torch.rand(1, 3, 64, 64)).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    # state dicts move between networks; a strict load names what is wrong
    other = pnn.Pixel3DMMNet(cfg)
    other.load_state_dict(sd)
    other.eval()
    net.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(other(x), net(x))
    del sd["head.t_conv2.bias"]
    with pytest.raises(ValueError, match="t_conv2.bias"):
        other.load_state_dict(sd)
    pnn.save_network(net, str(tmp_path / "n.safetensors"))
    assert pnn.load_network(str(tmp_path / "n.safetensors")).config["prediction_type"] == "normals"
