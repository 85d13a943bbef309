"""pixel3dmm.fit from Python: a short fit on a small synthetic model, callbacks, settings, outputs and errors."""
import json

import pytest
import torch

import pixel3dmm
from pixel3dmm import fit, flame

SIZE = 64


def small_fitter(**config):
    model = flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5)
    settings = {"image_size": SIZE, "n_shape": 10, "n_expr": 5, "iters": 30,
                "camera": {"steps": 30, "landmark_steps": 15}}
    settings.update(config)
    return fit.Fitter(flame.Flame(model), settings)


@pytest.fixture(scope="module")
def scene():
    fitter = small_fitter()
    truth = fit.random_params(1, 10, 5, seed=3, shape_std=0.3, expr_std=0.3, yaw_deg=10)
    st = fit.synthetic_target(fitter, truth, size=SIZE, outlier_fraction=0.0)
    return fitter, truth, st


def test_exports_and_default_config():
    assert pixel3dmm.fit is fit
    d = fit.default_config()
    assert d["image_size"] == 256 and d["iters"] == 500
    assert d["lr"]["shape"] == pytest.approx(0.002)
    assert d["loss"]["uv_pixel_gate"] == 0.0
    # The dict is plain JSON: it round-trips through the json module.
    assert json.loads(json.dumps(d)) == d


def test_partial_config_keeps_defaults_and_unknown_keys_fail():
    f = small_fitter(loss={"uv_pixel_gate": 0.1})
    assert f.config["loss"]["uv_pixel_gate"] == pytest.approx(0.1)
    assert f.config["loss"]["normal"] == pytest.approx(1000.0)  # untouched default
    assert f.config["iters"] == 30
    assert repr(f).startswith("Fitter(vertices=1200, image_size=64, steps=30+30,") and "uv_pixel_gate=0.1" in repr(f)
    with pytest.raises(ValueError, match="nosuch"):
        small_fitter(nosuch=1)
    with pytest.raises(ValueError, match="iters"):
        small_fitter(iters="many")


def test_fit_runs_logs_and_improves_on_the_start(scene):
    fitter, truth, st = scene
    entries = []
    r = fitter.fit(st["target"], on_step=lambda e: entries.append(e))
    assert r.iterations == 60 and len(entries) == 60 and len(r.log) == 60
    assert [e["stage"] for e in entries[:30]] == ["camera"] * 30
    assert entries[-1]["stage"] == "full" and "uv" in entries[-1]["terms"]
    assert r.vertices.shape == (1, 1200, 3) and r.canonical.shape == (1, 1200, 3)
    assert r.landmarks2d.shape == (1, 68, 2)
    assert isinstance(r.camera, pixel3dmm.render.Camera)
    named = r.params.named()
    assert set(named) == {"shape", "exp", "jaw", "neck", "eyes", "eyelids", "R", "t", "fl", "pp"}
    # Even this short schedule brings the face's image positions closer to the truth than the neutral start.
    ev = fitter.evaluate(truth)
    assert set(ev) == {"vertices", "vertices_flame", "vertices_noneck_flame", "landmarks", "rotation"}
    assert ev["vertices_noneck_flame"].shape == (1, 1200, 3)
    face = ev["vertices"]
    start = fit.FitParams.initial(1, 10, 5)
    def image_error(params, vertices):
        return (fitter.camera(params).project(vertices) - fitter.camera(truth).project(face))[..., :2].norm(dim=-1).mean()
    assert image_error(r.params, r.vertices) < 0.5 * image_error(start, fitter.evaluate(start)["vertices"])


def test_callback_stops_and_warm_start(scene):
    fitter, truth, st = scene
    r = fitter.fit(st["target"], on_step=lambda e: not (e["stage"] == "camera" and e["step"] == 4))
    assert r.iterations == 5
    # From the truth itself, a full fit stays close to it.
    r = fitter.fit([st["target"]], start=truth)
    measured = fit.non_eyeball_vertices(flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5))
    assert 0 < measured.numel() < 1200
    face = fit.face_region_vertices(flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5))
    assert 0 < face.numel() < measured.numel()
    assert bool(torch.isin(face, measured).all())
    assert fit.aligned_vertex_error(r.vertices, st["vertices"], measured) < 0.002


def test_bad_targets_name_the_field(scene):
    fitter, _, st = scene
    t = st["target"]
    bad = fit.FitTarget(uv=t.uv, normals=t.normals[..., :-1], uv_mask=t.uv_mask, normal_mask=t.normal_mask)
    with pytest.raises(ValueError, match="target 0 normals"):
        fitter.fit(bad)
    nan_uv = t.uv.clone()
    nan_uv[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fitter.fit(fit.FitTarget(uv=nan_uv, normals=t.normals, uv_mask=t.uv_mask, normal_mask=t.normal_mask))


def test_write_outputs(scene, tmp_path):
    fitter, _, st = scene
    r = fitter.fit(st["target"], on_step=lambda e: e["step"] < 3 or e["stage"] == "camera")
    fit.write_outputs(str(tmp_path / "out"), fitter, r, st["target"])
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"mesh.ply", "mesh.obj", "params.json", "params.safetensors", "overlay.png", "maps.png",
            "loss.png", "loss.csv"} <= names
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert {"flame.exp", "flame.shape", "flame.R", "flame.t", "camera.fl", "camera.pp"} <= set(params)
    assert params["flame.shape"]["shape"] == [1, 10]
    assert params["identity_prior"] is None  # no identity code given: no prior (official ignore_mica)
    overlay = fit.overlay_image(fitter, r, st["target"])
    assert overlay.dim() == 4 and overlay.shape[1] == 3
    assert 0.0 <= float(overlay.min()) and float(overlay.max()) <= 1.0


def test_identity_prior_from_python(scene, tmp_path):
    fitter, truth, st = scene
    t = st["target"]
    code = torch.linspace(-1.0, 1.0, 10)
    with_code = fit.FitTarget(uv=t.uv, normals=t.normals, uv_mask=t.uv_mask, normal_mask=t.normal_mask,
                              valid_bg=t.valid_bg, landmarks=t.landmarks, iris=t.iris, identity=code.numpy())
    assert with_code.identity.shape == (10,)
    # Stopped during the camera warm-up: the identity is still the prior it started from.
    r = fitter.fit(with_code, on_step=lambda e: e["stage"] == "camera" and e["step"] < 2)
    assert torch.equal(r.params.shape, code.unsqueeze(0))
    assert torch.equal(r.identity_prior, code.unsqueeze(0))
    fit.write_outputs(str(tmp_path / "out"), fitter, r, with_code)
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert params["identity_prior"]["shape"] == [1, 10]
    assert params["identity_prior"]["values"] == pytest.approx(code.tolist())
    # Without a code: no prior.
    assert fitter.fit(t, on_step=lambda e: False).identity_prior is None
    assert torch.equal(fit.FitParams.initial(2, 10, 5, identity=code.unsqueeze(0)).shape, code.unsqueeze(0))
    assert float(fit.FitParams.initial(2, 10, 5).shape.abs().max()) == 0.0
    with_code.identity = torch.zeros(7)
    with pytest.raises(ValueError, match=r"target 0 identity.*\[1, 10\]"):
        fitter.fit(with_code)


def test_silhouette_texture_setting(tmp_path):
    assert fit.default_config()["silhouette_texture"] == "auto"  # face + eyeballs from the model's masks
    small_fitter(silhouette_texture="")  # the whole mesh's coverage (ours)
    small_fitter(silhouette_texture="masks")  # generated from the model's face and eyeball masks
    with pytest.raises(FileNotFoundError, match="uv_mask_eyes.png"):
        small_fitter(silhouette_texture=str(tmp_path / "uv_mask_eyes.png"))
