"""examples/quickstart.ipynb runs top to bottom in a fresh kernel and shows its pictures inline."""
import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(os.environ.get("PIXEL3DMM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))


def test_quickstart_notebook_runs():
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    # The kernel is Debian's /usr/bin/python3 (its kernelspec); it inherits PYTHONPATH from this process.
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the overlay and the maps should be shown inline"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "face-region error" in text
