"""examples/python/quickstart.py (the notebook as a script) runs as a user would run it and writes its pictures and
outputs; a half-given photo setup is a usage error."""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(os.environ.get("PIXEL3DMM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
SCRIPT = ROOT / "examples" / "python" / "quickstart.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=os.environ)


def test_quickstart_script_fits_the_synthetic_head(tmp_path):
    out = tmp_path / "qs"
    p = run("--out", str(out), "--steps", "40")
    assert p.returncode == 0, p.stderr
    assert "face-region error" in p.stdout
    for name in ["overlay.png", "maps.png", "fit/mesh.ply", "fit/params.json"]:
        assert (out / name).stat().st_size > 0, name


def test_quickstart_script_refuses_a_partial_photo_setup(tmp_path):
    p = run("--out", str(tmp_path / "qs"), "--photo", "face.jpg")
    assert p.returncode == 2
    assert "needs all of --photo, --flame, --uv-weights and --normal-weights" in p.stderr
    assert not (tmp_path / "qs").exists()
