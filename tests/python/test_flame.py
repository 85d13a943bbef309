"""pixel3dmm.flame from Python: the forward pass against an independent NumPy implementation of the official FLAME
forward (written here from the spec, not from the C++), the bindings' API, and `pixel3dmm synth-flame`."""
import math
import os
import subprocess

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import flame


@pytest.fixture(scope="module")
def model():
    return flame.FlameModel.synthetic(vertices=600, n_shape=10, n_expr=7, seed=4)


# ---- NumPy reference ------------------------------------------------------------------------------------------

def np_rodrigues(v):
    theta = np.linalg.norm(v)
    if theta < 1e-12:
        return np.eye(3)
    k = v / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * K + (1 - math.cos(theta)) * K @ K


def np_6d_to_matrix(d):
    b1 = d[:3] / max(np.linalg.norm(d[:3]), 1e-12)
    a2 = d[3:] - (b1 @ d[3:]) * b1
    b2 = a2 / max(np.linalg.norm(a2), 1e-12)
    return np.stack([b1, b2, np.cross(b1, b2)])  # rows


def np_contour_bin(R):
    yaw = math.atan2(-R[2, 0], math.sqrt(R[0, 0] ** 2 + R[1, 0] ** 2))
    a = int(np.round(min(39.0, -yaw * 180.0 / math.pi)))  # numpy rounds half to even, like torch.round
    return a if a >= 0 else (39 - a if a >= -39 else 78)


def np_flame(m, shape, expr, rots, eyelids, trans):
    """One sample. rots: five 3x3 matrices (root, neck, jaw, left eye, right eye)."""
    vt = m["v_template"]
    S = int(m["n_shape_basis"])
    sd = m["shapedirs"]
    v_shaped = vt + sd[:, :, :len(shape)] @ shape + sd[:, :, S:S + len(expr)] @ expr
    Jr = m["J_regressor"] @ v_shaped
    parents = [-1, 0, 1, 1, 1]
    feat = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 5)])
    v_posed = v_shaped + m["posedirs"] @ feat
    G = []
    for j in range(5):
        T = np.eye(4)
        T[:3, :3] = rots[j]
        T[:3, 3] = Jr[j] - (Jr[parents[j]] if j else 0)
        G.append(T if j == 0 else G[parents[j]] @ T)
    A = []
    for j in range(5):
        Aj = G[j].copy()
        Aj[:3, 3] -= G[j][:3, :3] @ Jr[j]
        A.append(Aj)
    A = np.stack(A)
    Tv = np.einsum("vj,jab->vab", m["weights"], A)
    verts = np.einsum("vab,vb->va", Tv[:, :3, :3], v_posed) + Tv[:, :3, 3]
    verts = verts + eyelids[0] * m["l_eyelid"] + eyelids[1] * m["r_eyelid"] + trans
    joints = np.stack([G[j][:3, 3] for j in range(5)]) + trans
    b = np_contour_bin(rots[0] @ rots[1])
    faces = m["f"]

    def bary(fidx, bc):
        return np.einsum("lkc,lk->lc", verts[faces[fidx]], bc)

    lmk = np.concatenate([bary(m["dynamic_lmk_faces_idx"][b], m["dynamic_lmk_bary_coords"][b]),
                          bary(m["static_lmk_faces_idx"], m["static_lmk_bary_coords"])])
    return verts, joints, lmk, b


def model_arrays(model):
    return {k: v.numpy() for k, v in model.to_tensors().items()}


@pytest.mark.parametrize("rotation", ["6d", "axis_angle"])
def test_forward_matches_numpy_reference(model, rotation):
    f = flame.Flame(model, rotation=rotation, dtype=torch.float64)
    m = model_arrays(model)
    rng = np.random.default_rng(0)
    B = 5
    aa = rng.normal(size=(B, 5, 3)) * 0.35
    aa[:, 1, 1] += np.linspace(-0.9, 0.9, B)  # neck yaws across the contour table
    mats = np.array([[np_rodrigues(a) for a in row] for row in aa])
    if rotation == "6d":
        rot = torch.from_numpy(mats[:, :, :2, :].reshape(B, 5, 6))
    else:
        rot = torch.from_numpy(aa)
    shape = rng.normal(size=(B, 10))
    expr = rng.normal(size=(B, 7))
    eyelids = rng.random((B, 2))
    trans = rng.normal(size=(B, 3)) * 0.1
    out = f(shape=torch.from_numpy(shape), expression=torch.from_numpy(expr), global_rotation=rot[:, 0],
            neck_pose=rot[:, 1], jaw_pose=rot[:, 2], eye_pose=rot[:, 3:].reshape(B, -1),
            eyelids=torch.from_numpy(eyelids), translation=torch.from_numpy(trans))
    bins = set()
    for i in range(B):
        verts, joints, lmk, b = np_flame(m, shape[i], expr[i], mats[i], eyelids[i], trans[i])
        bins.add(b)
        assert np.abs(out["vertices"][i].numpy() - verts).max() < 1e-10
        assert np.abs(out["joints"][i].numpy() - joints).max() < 1e-10
        assert np.abs(out["landmarks"][i].numpy() - lmk).max() < 1e-10
        assert int(out["contour_bin"][i]) == b
    assert len(bins) >= 3  # the test really crossed contour bins


def test_6d_rows_convention():
    R = flame.axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64))
    d6 = flame.matrix_to_rotation_6d(R)
    assert torch.equal(d6, R[:2].reshape(6))
    ref = np_6d_to_matrix(d6.numpy() * 2.5)
    assert np.abs(flame.rotation_6d_to_matrix(d6 * 2.5).numpy() - ref).max() < 1e-12
    assert np.abs(flame.axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)).numpy()
                  - np_rodrigues(np.array([0.3, -0.2, 0.5]))).max() < 1e-14


def test_api_defaults_dtypes_and_errors(model):
    f = flame.Flame(model)
    assert f.dtype == torch.float32 and f.rotation == "6d" and f.n_shape == 10 and f.n_expr == 7
    assert "Flame(V=600" in repr(f) and "FlameModel(V=600" in repr(model)
    out = f()
    assert out["vertices"].dtype == torch.float32 and out["vertices"].shape == (1, 600, 3)
    assert out["landmarks"].shape == (1, 68, 3)
    assert torch.allclose(out["vertices"][0].double(), model.v_template, atol=1e-6)
    p = f.neutral_params(3)
    assert p["shape"].shape == (3, 10) and p["eye_pose"].shape == (3, 12)
    assert f(**p)["vertices"].shape == (3, 600, 3)
    with pytest.raises(ValueError, match=r"expression.*\[1, 7\].*\[1, 5\]"):
        f(expression=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="Float.*Double"):
        f(shape=torch.zeros(1, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="n_shape"):
        flame.Flame(model, n_shape=11)
    f.to(torch.float64)
    assert f(shape=torch.zeros(1, 10, dtype=torch.float64))["vertices"].dtype == torch.float64
    assert set(f.buffers()) >= {"v_template", "shape_dirs", "expr_dirs", "pose_dirs", "lbs_weights_t"}


def test_gradients_flow_from_python(model):
    f = flame.Flame(model, dtype=torch.float64)
    shape = torch.zeros(2, 10, dtype=torch.float64, requires_grad=True)
    jaw = torch.tensor([[1.0, 0, 0, 0, 1, 0.1]] * 2, dtype=torch.float64, requires_grad=True)
    out = f(shape=shape, jaw_pose=jaw)
    (out["vertices"].sum() + out["landmarks"].square().sum()).backward()
    assert shape.grad is not None and shape.grad.abs().sum() > 0
    assert jaw.grad is not None and jaw.grad.abs().sum() > 0


def test_model_file_round_trip_and_errors(model, tmp_path):
    path = str(tmp_path / "m.safetensors")
    model.save(path, dtype=torch.float32)
    back = flame.FlameModel.load(path)
    assert torch.allclose(back.shapedirs, model.shapedirs, atol=1e-8)
    assert back.masks.keys() == model.masks.keys()
    t = model.to_tensors()
    t["weights"] = t["weights"][:, :4]
    with pytest.raises(ValueError, match=r"'weights'.*\[600, 5\].*\[600, 4\]"):
        flame.FlameModel.from_tensors(t, "dict")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        flame.FlameModel.load(str(tmp_path / "nope.npz"))


def test_synth_flame_command(tmp_path):
    exe = os.environ.get("PIXEL3DMM_BIN")
    if not exe:
        pytest.skip("PIXEL3DMM_BIN not set")
    out = tmp_path / "synth.npz"
    r = subprocess.run([exe, "synth-flame", "--out", str(out), "--vertices", "600", "--shape", "10", "--expr", "7",
                        "--seed", "4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "V=600" in r.stdout
    z = np.load(out)
    ref = model_arrays(flame.FlameModel.synthetic(vertices=600, n_shape=10, n_expr=7, seed=4))
    assert set(z.files) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(z[k], ref[k], err_msg=k)
    r = subprocess.run([exe, "synth-flame", "--out", str(tmp_path / "x.npz"), "--vertices", "ten"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--vertices" in r.stderr
    r = subprocess.run([exe, "synth-flame", "--out", str(tmp_path / "no" / "x.npz")], capture_output=True, text=True)
    assert r.returncode != 0 and "x.npz" in r.stderr


def test_package_exports():
    assert "flame" in pixel3dmm.__all__
    for name in flame.__all__:
        assert hasattr(flame, name)
