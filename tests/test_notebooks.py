"""The teaching notebooks run top to bottom, and what is stored is their executed form."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat", reason="install the 'notebooks' extra")
nbclient = pytest.importorskip("nbclient", reason="install the 'notebooks' extra")

spec = importlib.util.spec_from_file_location(
    "build_notebooks", REPO / "examples" / "build_notebooks.py"
)
build = importlib.util.module_from_spec(spec)
sys.modules["build_notebooks"] = build
spec.loader.exec_module(build)


@pytest.mark.parametrize("name", sorted(build.NOTEBOOKS))
def test_stored_notebook_is_the_executed_source(name):
    nb = nbformat.read(REPO / "examples" / f"{name}.ipynb", as_version=4)
    cells = build.NOTEBOOKS[name]
    assert [c.source for c in nb.cells] == [source for _, source in cells]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.notebooks
@pytest.mark.parametrize("name", sorted(build.NOTEBOOKS))
def test_notebook_runs_top_to_bottom(name, shared_data, monkeypatch):
    monkeypatch.setenv("LATENTFACTORS_DATA", str(shared_data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(REPO / "examples" / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "examples")}},
    ).execute()
