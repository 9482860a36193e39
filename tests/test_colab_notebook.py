"""The Colab notebook's real cells run end to end on CPU with a tiny parameter override."""

from __future__ import annotations

from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "colab" / "train_forecaster.ipynb"


def test_notebook_installs_gpu_extra_and_trains_through_the_entry_point() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert '".[gpu]"' in source
    assert "train_forecaster(params)" in source
    assert "files.download(OUT)" in source


def test_notebook_executes_with_tiny_config(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    out = tmp_path / "tiny.pth"
    override = (
        "INSTALL = False\nSTART, END = '2009-01-01', '2011-12-31'\n"
        "LOOKBACK, D_MODEL, LAYERS, D_STATE, EXPAND = 20, 8, 1, 4, 2\n"
        f"EPOCHS, BATCH = 1, 64\nDEVICE = 'cpu'\nOUT = {str(out)!r}\nTENSORBOARD_DIR = {str(tmp_path / 'tb')!r}\n"
        "EVALUATE = True\nDOWNLOAD = True"
    )
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(override, metadata={"tags": ["injected-parameters"]}))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    checkpoint = torch.load(out, map_location="cpu", weights_only=True)
    assert checkpoint["model_config"]["d_model"] == 8
    assert checkpoint["epoch"] == 1
    assert any((tmp_path / "tb").iterdir())
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "kept epoch 1" in outputs
    assert "not running in Colab" in outputs
    assert '"vol"' in outputs

