"""A torch.nn reference of the Pixel3DMM network, written for the tests (timm and Lightning are not installed).

Parameter names follow the official checkpoints: the backbone is a timm VisionTransformer under
``img_encoder.model.``; the head uses ``view_embed``, ``vol_decoder.{down_proj,layers.N,norm}``, ``t_conv1..3`` and
``token_2_patch_content``, with ``torch.nn.MultiheadAttention`` inside the blocks. The modules the official network
builds but never calls at inference (``dir_norm``, ``dir_norm_uv``, ``uv_enc_mlp``) exist too, so that the
checkpoints written from this model carry every name the official ones do.

Also here: ``save_lightning_checkpoint`` (a Lightning-style checkpoint whose hyper-parameters are a fake OmegaConf
DictConfig pickled from fake ``omegaconf`` modules), a pure-Python safetensors reader and the official
test-time mirroring and PNG encodings.
"""
import math
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------------------------
# timm-style VisionTransformer (dynamic_img_size=True)
def resample_abs_pos_embed(posemb, new_size, old_size, num_prefix_tokens):
    """timm.layers.resample_abs_pos_embed with its defaults (bicubic, antialias=True)."""
    if posemb.shape[1] == new_size[0] * new_size[1] + num_prefix_tokens and new_size[0] == new_size[1]:
        return posemb
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    dim = posemb.shape[-1]
    grid = grid.reshape(1, old_size[0], old_size[1], dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([prefix, grid], dim=1) if num_prefix_tokens else grid


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).permute(0, 2, 3, 1)  # NHWC, as timm with dynamic_img_size


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, layer_scale):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


class VisionTransformer(nn.Module):
    """timm's VisionTransformer (class token, optional register tokens, absolute position embedding)."""

    def __init__(self, dim=384, depth=12, heads=6, patch=16, img_size=224, layer_scale=False, reg_tokens=0,
                 no_embed_class=False):
        super().__init__()
        self.patch, self.grid = patch, img_size // patch
        self.num_prefix = 1 + reg_tokens
        self.no_embed_class = no_embed_class
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, dim)) if reg_tokens else None
        embed_len = self.grid ** 2 + (0 if no_embed_class else self.num_prefix)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, layer_scale) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.num_features = dim

    def forward_features(self, x):
        x = self.patch_embed(x)
        b, h, w, c = x.shape
        pos = resample_abs_pos_embed(self.pos_embed, (h, w), (self.grid, self.grid),
                                     0 if self.no_embed_class else self.num_prefix)
        x = x.reshape(b, -1, c)
        prefix = [self.cls_token.expand(b, -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(b, -1, -1))
        if self.no_embed_class:
            x = torch.cat(prefix + [x + pos], dim=1)
        else:
            x = torch.cat(prefix + [x], dim=1) + pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class DinoWrapper(nn.Module):
    def __init__(self, **vit):
        super().__init__()
        self.model = VisionTransformer(**vit)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def forward(self, image):
        return self.model.forward_features((image - self.mean) / self.std)[:, 1:]


# ---------------------------------------------------------------------------------------------------------------
# The official head
class GroupAttBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
        self.self_attn2 = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim),
                                 nn.Dropout(0.0))
        self.mlp2 = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim),
                                  nn.Dropout(0.0))

    def forward(self, x):
        b, v, c, h, w = x.shape
        x = x.permute(0, 1, 3, 4, 2).reshape(b, v * h * w, c)
        x = self.norm1(x)  # replaces the stream: the official quirk
        x = x + self.self_attn(x, x, x, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        x = self.norm3(x)
        x = x + self.self_attn2(x, x, x, need_weights=False)[0]
        x = x + self.mlp2(self.norm4(x))
        return x.reshape(b, v, h, w, c).permute(0, 1, 4, 2, 3)


class VolTransformer(nn.Module):
    def __init__(self, in_dim, dim, layers, heads):
        super().__init__()
        self.down_proj = nn.Linear(in_dim, dim)
        self.layers = nn.ModuleList([GroupAttBlock(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)  # built, never used

    def forward(self, x):
        x = self.down_proj(x.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)
        for layer in self.layers:
            x = layer(x)
        return x


class ModLN(nn.Module):
    def __init__(self, inner, mod):
        super().__init__()
        self.norm = nn.LayerNorm(inner, eps=1e-6)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(mod, 2 * inner))


PRED_DIMS = {"uv_map": 2, "normals": 3}


class Network(nn.Module):
    """The official ``Network`` at inference, for DINO backbones with conv_dec=True."""

    def __init__(self, prediction_type="uv_map", vit=None, n_views=2, view_embed_dim=16, embedding_dim=256,
                 num_layers=6, num_heads=8):
        super().__init__()
        vit = dict(vit or {})
        self.img_encoder = DinoWrapper(**vit)
        c = self.img_encoder.model.num_features
        self.prediction_type = prediction_type
        self.n_views = n_views
        self.dir_norm = ModLN(c, 32)
        self.dir_norm_uv = ModLN(c, c)
        self.uv_enc_mlp = nn.Sequential(nn.SiLU(), nn.Linear(24, c))
        if n_views > 1:
            self.view_embed = nn.Parameter(torch.randn(1, n_views, view_embed_dim, 1, 1) / math.sqrt(view_embed_dim))
            c += view_embed_dim
        d = embedding_dim
        self.vol_decoder = VolTransformer(c, d, num_layers, num_heads)
        self.pred_dim = PRED_DIMS[prediction_type]
        self.t_conv1 = nn.ConvTranspose2d(d, d, 2, stride=2)
        self.t_conv2 = nn.ConvTranspose2d(d, d, 2, stride=2)
        self.t_conv3 = nn.ConvTranspose2d(d, d, 2, stride=2)
        self.token_2_patch_content = nn.Linear(d, 4 * self.pred_dim)

    def forward(self, tar_rgb):
        """tar_rgb: B x N x H x W x 3 in [0, 1] -> {prediction_type: B x N x pred_dim x 16h x 16w}."""
        b, n, h, w, _ = tar_rgb.shape
        x = tar_rgb.reshape(b * n, h, w, 3).permute(0, 3, 1, 2)
        feats = self.img_encoder(x).permute(0, 2, 1)  # b*n x C x L
        tok = int(np.sqrt(h * w / feats.shape[-1]))
        feats = feats.reshape(b, n, feats.shape[1], h // tok, w // tok)
        if self.n_views > 1:
            feats = torch.cat([feats, self.view_embed[:, :n].repeat(b, 1, 1, feats.shape[-2], feats.shape[-1])], 2)
        feats = self.vol_decoder(feats)
        feats = feats.reshape(-1, *feats.shape[2:])
        feats = F.gelu(self.t_conv1(feats))
        feats = F.gelu(self.t_conv2(feats))
        feats = F.gelu(self.t_conv3(feats))
        gh = feats.shape[-1]
        feats = self.token_2_patch_content(feats.permute(0, 2, 3, 1).reshape(feats.shape[0], -1, feats.shape[1]))
        p, c = 2, self.pred_dim
        img = feats.reshape(b, n, gh, gh, p, p, c)
        img = torch.einsum("nvhwpqc->nvchpwq", img).reshape(b, n, c, gh * p, gh * p)
        return {self.prediction_type: img}


def vit_kwargs(name):
    """Backbone keyword arguments for the timm names the tests use."""
    size = next(s for s in VIT_SIZES if f"_{s}_" in name)
    dim, depth, heads = VIT_SIZES[size]
    patch = int(name.split("patch")[1].split("_")[0])
    dinov2 = "dinov2" in name
    reg = int(name.split("_reg")[1].split("_")[0]) if "_reg" in name else 0
    return dict(dim=dim, depth=depth, heads=heads, patch=patch, img_size=518 if dinov2 else 224,
                layer_scale=dinov2, reg_tokens=reg, no_embed_class=reg > 0)


def randomize_(model, seed):
    """Random weights with the magnitudes of a trained network (LayerNorm scales near 1, small biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.1 + 0.05 * torch.randn(p.shape, generator=g))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(max(fan_in, 1)))
    return model


# ---------------------------------------------------------------------------------------------------------------
# Official inference: mirroring and PNG encodings (scripts/network_inference.py)
def predict_official(net, rgb):
    """rgb: B x H x W x 3 in [0, 1] -> the averaged raw output B x C x H x W (the official mirror TTA)."""
    with torch.no_grad():
        out = net(rgb[:, None])[net.prediction_type]
        out_m = net(torch.flip(rgb[:, None], dims=[3]))[net.prediction_type]
        flipped = torch.flip(out_m, dims=[4]).clone()
        flipped[:, :, 0] *= -1
        if net.prediction_type == "uv_map":
            flipped[:, :, 0] += 2 * 0.0075
        return ((out + flipped) / 2)[:, 0]


def official_png(prediction_type, out):
    """out: C x H x W raw (averaged) output -> H x W x 3 uint8, as the official inference writes it."""
    if prediction_type == "uv_map":
        t = torch.clamp((out + 1) / 2, 0, 1)
    else:
        t = out / torch.norm(out, dim=0).unsqueeze(0)
        t = torch.clamp((t + 1) / 2, 0, 1)
        t = torch.stack([t[0], 1 - t[2], 1 - t[1]], dim=0)
    a = t.permute(1, 2, 0).numpy()
    if a.shape[-1] == 2:
        a = np.concatenate([a, np.zeros_like(a[..., :1])], axis=-1)
    return (a * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Lightning-style checkpoints with a fake OmegaConf config
def _fake_omegaconf():
    """Registers minimal ``omegaconf`` modules whose classes pickle the way OmegaConf's do (state dicts with
    ``_content`` / ``_val`` / ``_metadata`` / ``_parent``)."""
    if "omegaconf.dictconfig" in sys.modules and getattr(sys.modules["omegaconf"], "_pixel3dmm_fake", False):
        return sys.modules["omegaconf.dictconfig"].DictConfig, sys.modules["omegaconf.nodes"].AnyNode
    root = types.ModuleType("omegaconf")
    root._pixel3dmm_fake = True
    mods = {n: types.ModuleType(f"omegaconf.{n}") for n in ("base", "dictconfig", "listconfig", "nodes")}

    import typing

    class ContainerMetadata:
        def __init__(self, key=None):
            # OmegaConf keeps typing annotations here; a subscripted one pickles through operator.getitem
            self.ref_type, self.object_type, self.optional, self.key = typing.Dict[str, typing.Any], dict, True, key
            self.flags, self.flags_root, self.resolver_cache = {}, False, {}

    class Metadata(ContainerMetadata):
        pass

    class DictConfig:
        def __init__(self, content, parent=None, key=None):
            self._metadata = ContainerMetadata(key)
            self._parent = parent
            self._content = {k: wrap(v, self, k) for k, v in content.items()}

    class ListConfig:
        def __init__(self, content, parent=None, key=None):
            self._metadata = ContainerMetadata(key)
            self._parent = parent
            self._content = [wrap(v, self, i) for i, v in enumerate(content)]

    class AnyNode:
        def __init__(self, value, parent=None, key=None):
            self._metadata = Metadata(key)
            self._parent = parent
            self._val = value

    def wrap(v, parent, key):
        if isinstance(v, dict):
            return DictConfig(v, parent, key)
        if isinstance(v, list):
            return ListConfig(v, parent, key)
        return AnyNode(v, parent, key)

    for cls, mod in ((ContainerMetadata, "base"), (Metadata, "base"), (DictConfig, "dictconfig"),
                     (ListConfig, "listconfig"), (AnyNode, "nodes")):
        cls.__module__ = f"omegaconf.{mod}"
        cls.__qualname__ = cls.__name__
        setattr(mods[mod], cls.__name__, cls)
    sys.modules["omegaconf"] = root
    for n, m in mods.items():
        sys.modules[f"omegaconf.{n}"] = m
        setattr(root, n, m)
    return DictConfig, AnyNode


def official_cfg(net, backbone_name, **overrides):
    """The parts of configs/base.yaml the converter reads, with unresolved interpolations elsewhere."""
    model = {"prediction_type": net.prediction_type, "encoder_backbone": backbone_name, "feature_map_type": "DINO",
             "num_layers": len(net.vol_decoder.layers), "num_heads": net.vol_decoder.layers[0].self_attn.num_heads,
             "view_embed_dim": 16, "embedding_dim": net.vol_decoder.down_proj.out_features, "conv_dec": True,
             "pred_conf": False, "pred_disentangled": False, "use_pos_enc": False, "use_plucker": False,
             "use_uv_enc": False, "prior_input": False, "n_facial_components": 0, "finetune_backbone": False,
             "attn_drop": 0.2, "n_groups": [16]}
    cfg = {"n_views": net.n_views, "model": model,
           "train_dataset": {"img_size": [512, 512], "n_group": "${n_views}"}}
    for k, v in overrides.items():
        (cfg if k == "n_views" else model)[k] = v
    return cfg


def save_lightning_checkpoint(path, net, cfg, *, drop=(), reshape=None, extra_state=None):
    """torch.save of {'state_dict': {'net.' + k: v, 'vertex_weight_mask': ...}, 'hyper_parameters': {'cfg':
    <fake DictConfig>}, ...} as Lightning writes it. ``drop`` removes keys, ``reshape`` maps key -> new tensor."""
    DictConfig, _ = _fake_omegaconf()
    sd = {"net." + k: v.detach().clone() for k, v in net.state_dict().items()}
    for k in drop:
        del sd[k]
    for k, v in (reshape or {}).items():
        sd[k] = v
    sd.update(extra_state or {})
    sd["vertex_weight_mask"] = torch.ones(1, 5023, 3)
    ckpt = {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.1.0", "state_dict": sd,
            "optimizer_states": [{"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(4)}},
                                  "param_groups": [{"lr": 4e-4, "betas": (0.9, 0.95), "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [4e-4], "last_epoch": 7}],
            "hparams_name": "kwargs", "hyper_parameters": {"cfg": DictConfig(cfg)}}
    torch.save(ckpt, path)


# ---------------------------------------------------------------------------------------------------------------
def read_safetensors(path):
    """A small pure-Python safetensors reader (float32/int64 tensors), independent of pixel3dmm's."""
    import json
    import struct
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "F16": np.float16}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out
