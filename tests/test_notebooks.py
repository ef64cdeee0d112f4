"""The data scientists' notebooks are stored clean and run end to end on the runbook's small world.

Each notebook is executed with nbclient on the venv's ``python3`` kernel, its ``parameters`` cell overridden
the way papermill does (an injected cell right after it); a notebook that raises fails its test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

from tests.test_runbook import runbook_world

pytestmark = pytest.mark.xdist_group("runbook_world")  # one worker builds the world once

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "python3"
TIMEOUT_SECONDS = 900


def test_there_are_the_three_workflows() -> None:
    names = {p.stem for p in NOTEBOOK_FILES}
    assert {"retrain_scorers", "evaluate_policy", "explain_contact"} <= names


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; clear them first"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_first_among_code(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    tagged = [i for i, cell in enumerate(code) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell must be the only one tagged `parameters`"
    assert 'data_dir = ""' in code[0].source


def inject_parameters(nb: NotebookNode, **values: object) -> NotebookNode:
    """Insert after the ``parameters`` cell one assigning ``values`` (papermill's injected-parameters)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)
    return nb


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runbook's small world (its first block, run as written), shared by the notebooks."""
    return runbook_world(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_runs_on_the_runbook_world(path: Path, world: Path) -> None:
    nb = inject_parameters(nbformat.read(path, as_version=4), data_dir=str(world))
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, when a cell raises
    code = [c for c in nb.cells if c.cell_type == "code"]
    kernel_python = code[-1].outputs[0]["text"].strip()
    assert Path(kernel_python).resolve() == Path(sys.executable).resolve(), "not the venv's kernel"
    assert all(c.execution_count is not None for c in code)
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 1, f"{path.name} drew no figure"
