"""pixel3dmm.eval from Python and `pixel3dmm eval` end to end: small and fast (2 cases, very few fit steps)."""
import csv
import math
import os
import subprocess

import pytest
import torch

import pixel3dmm
from pixel3dmm import eval as ev
from pixel3dmm import flame, render


def small_model():
    return flame.synthetic_flame(vertices=1500, n_shape=10, n_expr=5)


def test_exports():
    assert pixel3dmm.eval is ev
    assert "chamfer" in ev.__all__ and "run_benchmark" in ev.__all__


def test_nearest_neighbors_match_brute_force_and_numpy_arrays_work():
    torch.manual_seed(0)
    points, queries = torch.rand(2000, 3), torch.rand(500, 3)
    d, i = ev.nearest_neighbors(points, queries)
    bd, bi = ev.nearest_neighbors_brute_force(points, queries)
    assert torch.equal(i, bi)
    assert torch.allclose(d, bd, atol=1e-6)
    ref = torch.cdist(queries.double(), points.double()).min(1)
    assert torch.allclose(d.double(), ref.values, atol=1e-6)
    tree = ev.KdTree(points.numpy())
    assert len(tree) == 2000 and "KdTree(points=2000)" in repr(tree)
    assert torch.equal(tree.query(queries)[1], i)
    with pytest.raises(ValueError, match="KdTree points"):
        ev.KdTree(torch.rand(4, 2))


def test_sphere_metrics_known_answer():
    unit = render.uv_sphere(61, 120, 1.0)
    big = render.uv_sphere(61, 120, 1.05)
    m = ev.compare_surfaces(big.vertices, big.faces, unit.vertices, unit.faces, samples=5000)
    assert m["chamfer_l1"] == pytest.approx(50.0, rel=0.02)
    assert m["accuracy_l1"] == pytest.approx(50.0, rel=0.02)
    assert m["completeness_l1"] == pytest.approx(50.0, rel=0.02)
    assert m["r25"] == 0.0 and m["normal_consistency"] > 0.999
    p, n = ev.sample_surface(unit.vertices, unit.faces, 3000, seed=1)
    assert p.shape == (3000, 3) and torch.allclose(p.norm(dim=1), torch.ones(3000), atol=1e-3)
    c = ev.chamfer(p * 1.001, p, n, n)
    assert c["chamfer_l1"] == pytest.approx(1.0, abs=0.3) and c["r25"] == 1.0


def test_umeyama_icp_and_score_mesh_recover_a_rigid_motion():
    model = small_model()
    angle = 0.2
    rot = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]],
                       dtype=torch.float64)
    move = ev.Similarity(rot, torch.tensor([0.01, 0.0, -0.02]), 1.0)
    src = model.v_template.double()
    s = ev.umeyama(src, move.apply(src))
    assert torch.allclose(s.rotation, rot, atol=1e-9) and "Similarity(" in repr(s)
    r = ev.icp(src, move.apply(src), initial=move, iterations=5)
    assert r["rms"] < 1e-6
    lmk = ev.now_landmarks(model, model.v_template)
    assert lmk.shape == (7, 3)
    score = ev.score_mesh(model, move.apply(model.v_template), model.v_template, samples=3000)
    assert score["chamfer_l1"] < 0.05 and score["r25"] == 1.0  # ICP on 3000 samples
    err = score["vertex_error"]
    assert err.shape == (model.v_template.shape[0],) and torch.isnan(err).any()


def test_cli_synth_run_score_end_to_end(tmp_path):
    exe = os.environ.get("PIXEL3DMM_BIN")
    if not exe:
        pytest.skip("PIXEL3DMM_BIN not set (run through ctest)")
    env = dict(os.environ, OMP_NUM_THREADS="2")
    bench = tmp_path / "bench"
    subprocess.run([exe, "eval", "synth", str(bench), "--cases", "2", "--seed", "3", "--size", "128"], check=True,
                   env=env, capture_output=True)
    assert (bench / "cases.jsonl").read_text().count("\n") == 2
    # The cases are fit inputs `pixel3dmm fit` reads as well.
    assert (bench / "case_000" / "fit_inputs" / "predictions.safetensors").exists()
    out = tmp_path / "res"
    fast = ["--set", "iters=5", "--set", "camera.steps=10", "--set", "camera.landmark_steps=5", "--set",
            "image_size=64", "--samples", "2000", "--icp-iters", "5"]
    run = subprocess.run([exe, "eval", "run", str(bench), "--method", "landmarks", "--out", str(out)] + fast,
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "[2/2] landmarks case_001" in run.stdout
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["case"] for r in rows] == ["case_000", "case_001"]
    assert all(float(r["posed_chamfer_l1_mm"]) > 0 for r in rows)
    assert "| **mean (2 cases)**" in (out / "results.md").read_text()
    assert (out / "heatmaps.png").exists()
    # Another tool's meshes: the ones just written, scored again, give the same figures.
    scored = tmp_path / "scored"
    sc = subprocess.run([exe, "eval", "score", str(bench), "--meshes", str(out / "meshes"), "--out", str(scored),
                         "--samples", "2000", "--icp-iters", "5", "--name", "again"],
                        env=env, capture_output=True, text=True)
    assert sc.returncode == 0, sc.stderr
    again = list(csv.DictReader(open(scored / "results.csv")))
    assert [r["posed_chamfer_l1_mm"] for r in again] == [r["posed_chamfer_l1_mm"] for r in rows]
    # Method (d): the embedded demo networks predict the maps from each case's photo.
    net = subprocess.run([exe, "eval", "run", str(bench), "--method", "full", "--demo-networks", "--out",
                          str(tmp_path / "net")] + fast, env=env, capture_output=True, text=True)
    assert net.returncode == 0, net.stderr
    assert "full (network)" in (tmp_path / "net" / "results.md").read_text()
    net_rows = list(csv.DictReader(open(tmp_path / "net" / "results.csv")))
    assert len(net_rows) == 2 and all(float(r["posed_chamfer_l1_mm"]) > 0 for r in net_rows)
    both = subprocess.run([exe, "eval", "run", str(bench), "--demo-networks", "--uv-weights", "uv.safetensors",
                           "--out", str(tmp_path / "net2")], env=env, capture_output=True, text=True)
    assert both.returncode == 2 and "--demo-networks" in both.stderr
    # The identity-prior experiment: with noise 0 the prior is the truth, so the neutral error drops far below the
    # same fit's without a prior.
    prior = subprocess.run([exe, "eval", "run", str(bench), "--method", "landmarks", "--identity-noise", "0",
                            "--out", str(tmp_path / "prior")] + fast, env=env, capture_output=True, text=True)
    assert prior.returncode == 0, prior.stderr
    assert "landmarks + prior" in (tmp_path / "prior" / "results.md").read_text()
    prior_rows = list(csv.DictReader(open(tmp_path / "prior" / "results.csv")))
    for with_prior, without in zip(prior_rows, rows):
        assert float(with_prior["neutral_chamfer_l1_mm"]) < 0.5 * float(without["neutral_chamfer_l1_mm"])
    # Usage errors: unknown method / action.
    bad = subprocess.run([exe, "eval", "run", str(bench), "--method", "magic"], env=env, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "magic" in bad.stderr
    bad = subprocess.run([exe, "eval", "frobnicate"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2


def test_python_run_benchmark(tmp_path):
    model = small_model()
    f = flame.Flame(model)
    n = ev.make_synthetic_benchmark(str(tmp_path / "b"), f, cases=2, seed=1, size=96)
    assert n == 2
    cfg = {"iters": 5, "image_size": 64, "n_shape": 10, "n_expr": 5, "camera": {"steps": 10, "landmark_steps": 5}}
    r = ev.run_benchmark(str(tmp_path / "b"), f, method="uv", out=str(tmp_path / "r"), config=cfg, samples=2000,
                         icp_iterations=5, heatmaps=1)
    assert r["method"] == "uv" and r["summary"]["cases"] == 2 and r["summary"]["failed"] == 0
    assert r["cases"][0]["posed"]["chamfer_l1"] > 0
    with pytest.raises(ValueError, match="unknown benchmark method"):
        ev.run_benchmark(str(tmp_path / "b"), f, method="magic", out=str(tmp_path / "r2"), config=cfg)
    with pytest.raises(FileNotFoundError):
        ev.run_benchmark(str(tmp_path / "missing"), f, out=str(tmp_path / "r3"))
