"""pixel3dmm.Tracker and `pixel3dmm track` on tiny synthetic videos (seconds)."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import pixel3dmm
from pixel3dmm import flame, track

BIN = os.environ.get("PIXEL3DMM_BIN")
needs_bin = pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")

SMALL = {
    "fit": {"image_size": 64, "n_shape": 10, "n_expr": 10, "camera": {"steps": 40, "landmark_steps": 20},
            "loss": {"dist_uv": 5.0}},
    "online": {"iters": 30, "early_stopping_delta": 0.5},
    "global": {"iters": 12, "batch_size": 4, "checkpoint_every": 4},
}


@pytest.fixture(scope="module")
def tracker():
    model = flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=10)
    return pixel3dmm.Tracker(flame.Flame(model), SMALL)


@pytest.fixture(scope="module")
def video(tracker):
    return track.synthetic_video(tracker, frames=5, seed=2, map_size=64, key_every=2)


def test_exports_and_config(tracker):
    assert "Tracker" in pixel3dmm.__all__ and pixel3dmm.Tracker is track.Tracker
    defaults = track.default_config()
    assert defaults["online"]["early_stopping_delta"] == 5.0
    assert defaults["global"]["iters"] == 5000 and defaults["global"]["batch_size"] == 16
    assert defaults["global"]["smoothness"]["t"] == 15200.0
    # the two changes to the official video settings (docs/tracking.md): the dense UV loss is gated, the neck prior
    # is stronger; single-image fitting keeps the official values
    assert defaults["fit"]["loss"]["uv_pixel_gate"] == 0.1
    assert defaults["fit"]["loss"]["reg_neck"] == 20.0
    assert pixel3dmm.fit.default_config()["loss"]["uv_pixel_gate"] == 0.0
    assert pixel3dmm.fit.default_config()["loss"]["reg_neck"] == 0.1
    assert tracker.config["global"]["iters"] == 12
    assert "global_iters=12" in repr(tracker)
    with pytest.raises(ValueError, match="bach_size"):
        pixel3dmm.Tracker(flame.Flame(flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=10)),
                          {"global": {"bach_size": 4}})


def test_synthetic_video_turns_the_neck_only_when_asked(tracker, video):
    straight = video["truth"].neck
    assert torch.equal(straight, straight[:1].expand_as(straight))  # one (identity) neck for every frame
    turned = track.synthetic_video(tracker, frames=5, seed=2, map_size=64, key_every=2, neck_deg=10.0)
    assert torch.equal(turned["truth"].rotation, video["truth"].rotation)  # the seed's other draws are kept
    assert (turned["truth"].neck - straight).abs().max() > 0.01
    assert not torch.allclose(turned["vertices"], video["vertices"])


def test_track_progress_stop_and_resume(tracker, video, tmp_path):
    frames = video["frames"]
    assert len(frames) == 5 and video["vertices"].shape[0] == 5
    seen = []
    stopped = tracker.track(frames, state=tmp_path / "state",
                            on_progress=lambda p: seen.append(p) or not (p["stage"] == "global" and p["done"] == 6))
    assert not stopped.complete
    assert [p["done"] for p in seen if p["stage"] == "online"] == [1, 2, 3, 4, 5]
    assert all(p["total"] == 12 for p in seen if p["stage"] == "global")
    resumed = tracker.track(frames, state=tmp_path / "state")
    assert resumed.complete and len(resumed.global_loss) == 12
    fresh = tracker.track(frames)
    assert torch.allclose(resumed.params.expression, fresh.params.expression, atol=1e-5)
    assert resumed.vertices.shape == (5, 1200, 3)
    assert track.vertex_jitter(resumed.vertices) > 0

    out = tracker.write(str(tmp_path / "out"), resumed, frames, fps=10.0)
    assert Path(out).exists()
    seq = json.loads((tmp_path / "out" / "sequence.json").read_text())
    assert seq["frames"] == 5 and seq["flame.exp"]["shape"] == [5, 10]
    assert (tmp_path / "out" / "frames" / "00004" / "mesh.ply").exists()


@needs_bin
def test_cli_synthetic(tmp_path):
    out = tmp_path / "run"
    args = [BIN, "track", "--synthetic", "4", "--map-size", "64", "--out", str(out), "--no-video",
            "--set", "fit.image_size=64", "--set", "fit.camera.steps=20", "--set", "fit.camera.landmark_steps=10",
            "--set", "online.iters=10", "--set", "global.iters=6", "--set", "global.batch_size=2",
            "--set", "fit.iters=10", "--compare", "--neck-deg", "10"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "independent single fits" in r.stdout and "tracker, after global" in r.stdout
    assert "neck +-10 deg" in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 4 and report["neck_deg"] == 10.0
    assert report["tracked"]["posed_error_mm"] > 0 and report["independent"]["jitter_mm"] > 0
    assert len(list((out / "input").glob("*.png"))) == 4
    assert (out / "sequence.safetensors").exists() and (out / "state" / "global.safetensors").exists()
    # A second run finds everything done in its state folder.
    r2 = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr

    r3 = subprocess.run([BIN, "track", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r3.returncode == 2 and "--synthetic" in r3.stderr
    r4 = subprocess.run([BIN, "track", str(tmp_path / "missing.mp4"), "--demo-networks", "--out",
                         str(tmp_path / "y")], capture_output=True, text=True)
    assert r4.returncode == 3 and "missing.mp4" in r4.stderr
    r5 = subprocess.run([BIN, "track", "--synthetic", "4", "--neck-deg", "-5", "--out", str(tmp_path / "z")],
                        capture_output=True, text=True)
    assert r5.returncode == 2 and "neck-deg" in r5.stderr
    r6 = subprocess.run([BIN, "track", "--synthetic", "4", "--identity", str(tmp_path / "code.npy"), "--out",
                         str(tmp_path / "w")], capture_output=True, text=True)
    assert r6.returncode == 2 and "real videos" in r6.stderr

    cfg = subprocess.run([BIN, "config", "track"], capture_output=True, text=True)
    assert cfg.returncode == 0 and json.loads(cfg.stdout) == track.default_config()


def test_config_file_matches_defaults():
    source = Path(os.environ.get("PIXEL3DMM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    assert json.loads((source / "configs" / "track.json").read_text()) == track.default_config()
