"""Training and batch reconstruction over several processes (docs/distributed.md), launched as torchrun does (RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) on localhost: two processes equal one with the
same global batch, a checkpoint written by two resumes in one, a killed rank is named by the survivor within the
timeout, and a sharded batch reconstruction interrupted and restarted ends with exactly one complete output per
photo."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from pixel3dmm import nn as pnn

BIN = os.environ.get("PIXEL3DMM_BIN")
needs_bin = pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")
FACES = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces")
PHOTO = FACES / "2008_001322.jpg"
SHORT = ["--set", "iters=4", "--set", "camera.steps=4", "--set", "camera.landmark_steps=2", "--set", "image_size=64"]

pytestmark = needs_bin


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank, world, port, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS")}
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def launch(args, world, **extra):
    """`pixel3dmm ARGS` as ranks 0 .. world-1 (what torchrun --nproc-per-node=world does)."""
    port = free_port()
    return [subprocess.Popen([BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=rank_env(r, world, port, **extra)) for r in range(world)]


def finish(procs, timeout=240):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def tiny_recipe(folder, steps=6):
    """A 32 px network (backbone fine-tuned: every parameter's gradient crosses the ranks) on 16 synthetic heads."""
    cfg = pnn.official_config("uv_map")
    cfg["image_size"] = 32
    cfg["backbone"].update(embed_dim=32, depth=1, num_heads=2, img_size=32)
    cfg["head"].update(in_dim=32, n_views=1, embedding_dim=16, num_layers=1, num_heads=2)
    return {
        "network": cfg,
        "data": {"synthetic": {"count": 12, "val_count": 3, "size": 48, "seed": 5, "folder": str(folder)}},
        "trainer": {"steps": steps, "batch_size": 4, "lr": 2e-3, "lr_backbone": 2e-3, "finetune_backbone": True,
                    "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2, "keep_checkpoints": 0, "seed": 9},
    }


def write_recipe(path, recipe):
    path.write_text(json.dumps(recipe))
    return path


def weights(path):
    net = pnn.load_network(str(path))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_processes_equal_one_and_resume_in_one(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.json", tiny_recipe(tmp_path / "data"))
    one = subprocess.run([BIN, "train", recipe, "--out", tmp_path / "one"], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert one.returncode == 0, one.stderr
    # Two processes, each half of the global batch of 4; replicas checked bit for bit after every step.
    (r0, out0, err0), (r1, out1, err1) = finish(launch(["train", recipe, "--out", tmp_path / "two"], 2,
                                                       PIXEL3DMM_DIST_CHECK=1, PIXEL3DMM_DIST_TIMEOUT=30))
    assert r0 == 0 and r1 == 0, err0 + err1
    assert "x 2 processes" in out0 and "step      6/6" in out0
    assert out1 == "", "only rank 0 prints"
    two = tmp_path / "two"
    for name in ("config.json", "log.csv", "val.csv", "loss.png", "model.safetensors"):
        assert (two / name).exists(), name
    assert len((two / "log.csv").read_text().splitlines()) == 7, "one header and one row per step, from rank 0"
    assert max_difference(weights(two / "model.safetensors"), weights(tmp_path / "one" / "model.safetensors")) < 1e-5
    for step in (2, 4):
        ck = f"checkpoints/step-000000{step}/model.safetensors"
        assert max_difference(weights(two / ck), weights(tmp_path / "one" / ck)) < 1e-5
    # The logged loss is the global batch's: the same as the single process's.
    rows_one = (tmp_path / "one" / "log.csv").read_text().splitlines()[1:]
    rows_two = (two / "log.csv").read_text().splitlines()[1:]
    for a, b in zip(rows_one, rows_two):
        assert abs(float(a.split(",")[3]) - float(b.split(",")[3])) < 1e-5
    val_one = (tmp_path / "one" / "val.csv").read_text().splitlines()[-1].split(",")
    val_two = (two / "val.csv").read_text().splitlines()[-1].split(",")
    assert val_one[:2] == val_two[:2] and abs(float(val_one[2]) - float(val_two[2])) < 1e-5  # sharded validation

    # The checkpoint of step 4 written by two processes resumes in one and ends where the single run ended.
    shutil.rmtree(two / "checkpoints" / "step-0000006")
    (two / "model.safetensors").unlink()
    p = subprocess.run([BIN, "train", recipe, "--out", two, "--resume"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "resuming at step 4" in p.stdout and "step      6/6" in p.stdout
    assert max_difference(weights(two / "model.safetensors"), weights(tmp_path / "one" / "model.safetensors")) < 1e-5


def test_python_trainer_reads_the_same_environment(tmp_path):
    """Rank 0 the command, rank 1 Python's pixel3dmm.Trainer: both join the same run from the environment."""
    recipe = write_recipe(tmp_path / "recipe.json", tiny_recipe(tmp_path / "data", steps=2))
    port = free_port()
    script = ("import sys, pixel3dmm\n"
              "t = pixel3dmm.Trainer(sys.argv[1], sys.argv[2])\n"
              "assert (t.rank, t.world_size) == (1, 2), (t.rank, t.world_size)\n"
              "t.train(on_log=lambda e: print('rank 1 got a callback'))\n"
              "print('python rank', t.rank, 'done at step', t.step)\n")
    procs = [subprocess.Popen([BIN, "train", recipe, "--out", tmp_path / "run"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=rank_env(0, 2, port)),
             subprocess.Popen([sys.executable, "-c", script, recipe, tmp_path / "run"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=rank_env(1, 2, port))]
    (r0, out0, err0), (r1, out1, err1) = finish(procs)
    assert r0 == 0 and r1 == 0, err0 + err1
    assert "python rank 1 done at step 2" in out1 and "callback" not in out1
    assert (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("victim", [1, 0])
def test_killed_rank_is_named_within_the_timeout(tmp_path, victim):
    recipe = tiny_recipe(tmp_path / "data", steps=100000)
    recipe["trainer"].update(checkpoint_every=0, val_every=0, warmup_steps=10)
    path = write_recipe(tmp_path / "recipe.json", recipe)
    timeout = 4
    procs = launch(["train", path, "--out", tmp_path / "run"], 2, PIXEL3DMM_DIST_TIMEOUT=timeout)
    try:
        log = tmp_path / "run" / "log.csv"
        deadline = time.time() + 120
        while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) > 3):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        assert log.exists(), "training did not start"
        os.kill(procs[victim].pid, signal.SIGKILL)
        killed = time.time()
        survivor = procs[1 - victim]
        _, stderr = survivor.communicate(timeout=timeout + 30)
        elapsed = time.time() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert survivor.returncode != 0
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert len(errors) == 1, stderr
    assert f"rank {victim}" in errors[0] and f"stopped on rank {1 - victim}" in errors[0], errors[0]
    assert elapsed < timeout + 5, elapsed


@pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
def test_sharded_reconstruction_interrupted_and_restarted(tmp_path):
    d = tmp_path / "nets"
    d.mkdir()
    nets = []
    for kind, name in (("uv_map", "uv"), ("normals", "normals")):
        cfg = pnn.official_config(kind)
        cfg["backbone"].update(embed_dim=32, depth=1, num_heads=1)
        cfg["head"].update(in_dim=32, embedding_dim=16, num_layers=1, num_heads=2)
        cfg["image_size"] = 64
        torch.manual_seed(1)
        pnn.save_network(pnn.Pixel3DMMNet(cfg), str(d / f"{name}.safetensors"))
        nets += [f"--{name.replace('normals', 'normal')}-weights", str(d / f"{name}.safetensors")]
    photos = tmp_path / "photos"
    photos.mkdir()
    count = 8
    for i in range(count):
        shutil.copy(PHOTO, photos / f"p{i}.jpg")
    out = tmp_path / "out"
    args = ["reconstruct", photos, "--out", out, "--resume", *nets, *SHORT]

    def complete():
        return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []

    procs = launch(args, 2)
    try:  # interrupt both ranks once some photos are done, others not
        deadline = time.time() + 240
        while time.time() < deadline and len(complete()) < 2 and any(p.poll() is None for p in procs):
            time.sleep(0.02)
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.communicate()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    before = complete()
    assert 2 <= len(before) < count, before
    stamps = {n: (out / n / "report.json").stat().st_mtime_ns for n in before}

    results = finish(launch(args, 2))
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
    outs = "".join(r[1] for r in results)
    assert sum(int(line.split(" already complete")[0].split()[-1]) for line in outs.splitlines()
               if "already complete" in line) == len(before), outs
    assert complete() == sorted(f"p{i}" for i in range(count)), "exactly one output per photo"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no partial folder left"
    for i in range(count):
        assert (out / f"p{i}" / "mesh.obj").stat().st_size > 0 and (out / f"p{i}" / "report.json").exists()
    assert {n: (out / n / "report.json").stat().st_mtime_ns for n in before} == stamps, "finished ones not redone"
    # each rank took its share: every photo was named in exactly one rank's output
    names = [line.split()[-1] for r in results for line in r[1].splitlines() if line.startswith("[")]
    assert sorted(pathlib.Path(n).stem for n in names) == sorted(set(f"p{i}" for i in range(count)) - set(before))
