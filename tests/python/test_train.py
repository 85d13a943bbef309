"""Training from Python and from the command line: pixel3dmm.Trainer, `pixel3dmm train`, exact resume, and a run
killed (SIGKILL) while it writes a checkpoint, which must leave the previous checkpoint loadable."""
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest
import torch

import pixel3dmm
from pixel3dmm import nn as pnn
from pixel3dmm import train as ptrain

BIN = os.environ.get("PIXEL3DMM_BIN")
needs_bin = pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")


def tiny_recipe(folder, steps=6, kind="uv_map"):
    """A 32 px network on 8 synthetic heads (4 held out): seconds to train."""
    cfg = pnn.official_config(kind)
    cfg["image_size"] = 32
    cfg["backbone"].update(embed_dim=32, depth=1, num_heads=2, img_size=32)
    cfg["head"].update(in_dim=32, n_views=1, embedding_dim=16, num_layers=1, num_heads=2)
    return {
        "network": cfg,
        "data": {"synthetic": {"count": 8, "val_count": 4, "size": 48, "seed": 3, "folder": str(folder)}},
        "trainer": {"steps": steps, "batch_size": 4, "lr": 2e-3, "lr_backbone": 2e-3, "finetune_backbone": True,
                    "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2, "keep_checkpoints": 0},
    }


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("train-data")


def test_trainer_from_python(tmp_path, data_folder):
    logs, vals = [], []
    t = pixel3dmm.Trainer(tiny_recipe(data_folder), tmp_path / "run")
    assert "Trainer(uv_map" in repr(t) and "8 training / 4 validation samples" in repr(t)
    assert t.step == 0 and t.train_size == 8 and t.val_size == 4
    before = t.validate()
    m = t.train(on_log=logs.append, on_validation=vals.append)
    assert t.step == 6 and [e["step"] for e in logs] == [1, 2, 3, 4, 5, 6]
    assert m["samples"] == 4 and m["uv_error"] is not None and m["normal_error_deg"] is None
    assert vals[-1] == m and m["loss"] < before["loss"]
    run = tmp_path / "run"
    for name in ("recipe.json", "config.json", "log.csv", "val.csv", "loss.png", "model.safetensors", "model.json"):
        assert (run / name).exists(), name
    assert [pathlib.Path(p).name for p in ptrain.list_checkpoints(run)] == [
        "step-0000002", "step-0000004", "step-0000006"]
    # The trained network is an ordinary network: it loads and predicts.
    net = pnn.load_network(str(run / "model.safetensors"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        t.network.eval()
        assert torch.allclose(net(x), t.network(x), atol=1e-6)
    # The same folder is not overwritten by accident.
    with pytest.raises(ValueError, match="already has checkpoints"):
        pixel3dmm.Trainer(tiny_recipe(data_folder), run)


def test_resume_from_python_equals_uninterrupted(tmp_path, data_folder):
    whole = pixel3dmm.Trainer(tiny_recipe(data_folder), tmp_path / "whole")
    whole.train()
    half = pixel3dmm.Trainer(tiny_recipe(data_folder), tmp_path / "parts", overrides=["trainer.steps=6"])

    class Stop(Exception):
        pass

    def stop_at_5(entry):  # after step 5's log row, before any checkpoint of step 5 (there is none: every 2)
        if entry["step"] == 5:
            raise Stop()

    with pytest.raises(Stop):
        half.train(on_log=stop_at_5)
    resumed = pixel3dmm.Trainer(tiny_recipe(data_folder), tmp_path / "parts", resume=True)
    assert resumed.step == 4
    resumed.train()
    for (name, a), (_, b) in zip(whole.network.named_parameters(), resumed.network.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    # The interrupted run's row for step 5 was dropped on resume: the logs read as one run.
    steps = lambda run: [line.split(",")[0] for line in (tmp_path / run / "log.csv").read_text().splitlines()]
    assert steps("parts") == steps("whole") == ["step", "1", "2", "3", "4", "5", "6"]


def test_bad_recipes(tmp_path, data_folder):
    r = tiny_recipe(data_folder)
    r["trainer"]["stepz"] = 3
    with pytest.raises(ValueError, match="stepz"):
        pixel3dmm.Trainer(r, tmp_path / "a")
    r = tiny_recipe(data_folder)
    del r["data"]
    with pytest.raises(ValueError, match="no training data"):
        pixel3dmm.Trainer(r, tmp_path / "b")
    r = tiny_recipe(data_folder)
    r["init"] = str(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        pixel3dmm.Trainer(r, tmp_path / "c")


def test_demo_predictor():
    p = pixel3dmm.predict.demo_predictor()
    assert p.image_size == 128
    out = p.predict(torch.rand(1, 3, 200, 200))
    assert out["uv"].shape == (1, 2, 128, 128) and out["normals"].shape == (1, 3, 128, 128)
    assert torch.allclose(out["normals"].norm(dim=1), torch.ones(1, 128, 128), atol=1e-4)


def write_recipe(path, recipe):
    path.write_text(json.dumps(recipe))
    return path


@needs_bin
def test_train_command_and_resume(tmp_path, data_folder):
    recipe = write_recipe(tmp_path / "recipe.json", tiny_recipe(data_folder, steps=4))
    out = tmp_path / "run"
    p = subprocess.run([BIN, "train", recipe, "--out", out], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "step      4/4" in p.stdout and "validation at step 4 (4 samples)" in p.stdout
    assert f"done: {out}/model.safetensors" in p.stdout
    # Again without --resume: refused, nothing changed.
    p = subprocess.run([BIN, "train", recipe, "--out", out], capture_output=True, text=True, timeout=300)
    assert p.returncode == 3 and "already has checkpoints" in p.stderr
    # More steps with --resume continue from step 4.
    p = subprocess.run([BIN, "train", recipe, "--out", out, "--resume", "--set", "trainer.steps=6"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "resuming at step 4" in p.stdout and "step      6/6" in p.stdout


@needs_bin
def test_sigkill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path, data_folder):
    recipe = tiny_recipe(data_folder, steps=40)
    recipe["trainer"]["checkpoint_every"] = 1
    path = write_recipe(tmp_path / "recipe.json", recipe)
    out = tmp_path / "run"
    env = dict(os.environ, PIXEL3DMM_CHECKPOINT_PAUSE_MS="1500")
    proc = subprocess.Popen([BIN, "train", path, "--out", out], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        # Wait until one checkpoint is complete and the next one is half written (its files are in the hidden
        # folder, trainer.json not yet), then kill the process there.
        deadline = time.time() + 120
        while time.time() < deadline:
            complete = ptrain.list_checkpoints(out)
            partial = list((out / "checkpoints").glob(".step-*")) if (out / "checkpoints").exists() else []
            if complete and partial and any((p / "model.safetensors").exists() for p in partial):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no half-written checkpoint appeared")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert list((out / "checkpoints").glob(".step-*")), "the kill should have left the partial folder behind"
    latest = ptrain.latest_checkpoint(out)
    assert latest is not None and (pathlib.Path(latest) / "trainer.json").exists()
    # The previous checkpoint loads (network and optimiser) and the run resumes from it.
    pnn.load_network(str(pathlib.Path(latest) / "model.safetensors"))
    resumed = pixel3dmm.Trainer(recipe, out, resume=True, overrides=["trainer.steps=" + str(
        json.loads((pathlib.Path(latest) / "trainer.json").read_text())["step"] + 1)])
    assert resumed.step == json.loads((pathlib.Path(latest) / "trainer.json").read_text())["step"]
    resumed.train()
