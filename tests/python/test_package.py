"""The package imports in a plain interpreter and a Jupyter kernel; the program answers --version and info."""
import os
import subprocess
import sys

import pytest

import pixel3dmm

BIN = os.environ.get("PIXEL3DMM_BIN", "pixel3dmm")


def test_runtime_info_reports_versions_threads_and_blas():
    info = pixel3dmm.runtime_info()
    assert info["pixel3dmm"] == pixel3dmm.__version__
    assert info["libtorch"].startswith("1.13")
    assert info["num_threads"] >= 1
    assert info["blas"] != "reference", info["blas_library"]


def test_threads_are_shared_with_torch():
    import torch

    pixel3dmm.set_num_threads(1)
    assert torch.get_num_threads() == 1
    pixel3dmm.set_num_threads(2)
    assert torch.get_num_threads() == 2


def test_import_in_a_jupyter_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import torch, pixel3dmm\nprint('kernel sees', pixel3dmm.__version__, torch.__version__)"))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert f"kernel sees {pixel3dmm.__version__}" in text


def test_program_version_and_info():
    out = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"pixel3dmm {pixel3dmm.__version__}"
    out = subprocess.run([BIN, "info", "--no-gemm"], capture_output=True, text=True, check=True).stdout
    assert "LibTorch" in out and "BLAS" in out and "threads" in out


def _env_without_openmp_wait():
    return {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}


def test_program_sets_the_openmp_wait_default_before_libgomp_reads_it():
    env = _env_without_openmp_wait()
    out = subprocess.run([BIN, "info", "--no-gemm"], capture_output=True, text=True, check=True, env=env).stdout
    assert "OpenMP wait GOMP_SPINCOUNT=1000" in out  # set, then the program re-executed itself
    env["OMP_WAIT_POLICY"] = "active"  # a user's choice is kept
    out = subprocess.run([BIN, "info", "--no-gemm"], capture_output=True, text=True, check=True, env=env).stdout
    assert "OpenMP wait OMP_WAIT_POLICY=active" in out


@pytest.mark.parametrize("first, expected", [("pixel3dmm", "GOMP_SPINCOUNT=1000"), ("torch", "")])
def test_import_sets_the_openmp_wait_default_only_before_torch(first, expected):
    code = f"import {first}, pixel3dmm; print(repr(pixel3dmm.runtime_info()['openmp_wait']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=_env_without_openmp_wait()).stdout
    assert out.strip() == repr(expected)


def test_program_exit_codes_for_bad_command_lines():
    assert subprocess.run([BIN, "no-such-command"], capture_output=True).returncode == 2
    r = subprocess.run([BIN, "info", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    assert subprocess.run([BIN], capture_output=True).returncode == 2
    for cmd in (["predict", "no-such-photo.jpg"], ["reconstruct", "no-such-photo.jpg"]):
        r = subprocess.run([BIN, *cmd, "--precision", "fp16"], capture_output=True, text=True)
        assert r.returncode == 2 and "--precision: expected float32 or bf16, found 'fp16'" in r.stderr
