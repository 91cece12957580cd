"""What an assignment is: the graded cells of an nbgrader source notebook in ``solutions/``."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path



# Same meaning as nbgrader.utils.is_grade/is_solution/is_locked (importing nbgrader costs ~2 s of
# CPU per process, paid once per submission by the checker).
def _nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_grade(cell) -> bool:
    """True if the cell's nbgrader metadata says ``grade: true`` (as ``nbgrader.utils.is_grade``)."""
    return bool(_nbgrader_meta(cell).get("grade", False))


def is_solution(cell) -> bool:
    """True if the cell's nbgrader metadata says ``solution: true`` (as ``nbgrader.utils.is_solution``)."""
    return bool(_nbgrader_meta(cell).get("solution", False))


def is_locked(cell) -> bool:
    """True for a read-only nbgrader cell: locked or graded, not a solution (as ``nbgrader.utils.is_locked``)."""
    meta = _nbgrader_meta(cell)
    return not is_solution(cell) and (bool(meta.get("locked", False)) or is_grade(cell))

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def normalise(code: str) -> str:
    """Code without blank lines or trailing spaces, to compare cells loosely."""
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def split_hidden(code: str) -> tuple[str, str]:
    """(public part, hidden part) of a test cell; lines of the hidden part keep their numbers."""
    public, hidden, inside = [], [], False
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN_HIDDEN):
            inside = True
            public.append("")
            hidden.append("")
            continue
        if stripped.startswith(END_HIDDEN):
            inside = False
            public.append("")
            hidden.append("")
            continue
        (hidden if inside else public).append(line)
        (public if inside else hidden).append("")
    return "\n".join(public), "\n".join(hidden)


def defined_names(code: str) -> list[str]:
    """Top-level names a cell binds (functions, classes, assignments); [] if it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets(node.target)
    return list(dict.fromkeys(names))


@dataclass
class TestCell:
    """One graded test cell of the source notebook (an nbgrader ``grade`` code cell).

    Fields: ``grade_id``, ``points``, ``public`` (the code students see), ``hidden`` (the code
    between the ``### BEGIN/END HIDDEN TESTS`` markers, "" if none) and ``index`` (the cell's
    position in the source notebook). Both parts keep the cell's line numbers (see :func:`split_hidden`).
    """

    grade_id: str
    points: float
    public: str  # the public part (what students see)
    hidden: str  # the hidden part ("" if none), never shown to students
    index: int   # position in the source notebook


@dataclass
class Assignment:
    """One exercise notebook of the course (an nbgrader assignment with one notebook)."""

    name: str                 # e.g. ch03_general_form
    notebook: str             # file name, e.g. general_form.ipynb
    source_path: Path
    release_dir: Path
    cells: list = field(default_factory=list)          # source cells (dicts)
    tests: list[TestCell] = field(default_factory=list)
    solution_ids: set[str] = field(default_factory=set)
    grade_ids: set[str] = field(default_factory=set)  # every nbgrader grade_id
    cell_ids: set[str] = field(default_factory=set)
    graded_names: list[str] = field(default_factory=list)  # names the solution cells define
    test_sources: set[str] = field(default_factory=set)   # normalised public test code
    locked_sources: dict = field(default_factory=dict)    # grade_id -> source of locked cells

    @property
    def max_points(self) -> float:
        """Full marks: the points of all the test cells."""
        return float(sum(t.points for t in self.tests))

    def trusted_prelude(self) -> list[tuple[int, str]]:
        """Code cells that are neither solution nor test cells (imports, setup), with positions."""
        return [(i, _source(c)) for i, c in enumerate(self.cells)
                if c["cell_type"] == "code" and not is_solution(c) and not is_grade(c)]

    def data_files(self) -> dict[str, bytes]:
        """Files handed out next to the notebook (data the notebook reads), name -> bytes."""
        out = {}
        if self.release_dir.is_dir():
            for path in sorted(self.release_dir.rglob("*")):
                rel = path.relative_to(self.release_dir).as_posix()
                if path.is_file() and not rel.endswith(".ipynb") and ".ipynb_checkpoints" not in rel:
                    out[rel] = path.read_bytes()
        return out


def load_assignment(course: Path, source: Path) -> Assignment:
    """Read one nbgrader source notebook into an :class:`Assignment`.

    Args:
        course: the course root (the released notebook's data files are in ``notebooks/<chapter>/``).
        source: the source notebook, ``solutions/<chapter>/<name>.ipynb``; its folder is the
            assignment's name.

    Raises:
        OSError, json.JSONDecodeError: if the file cannot be read or is not JSON.
        KeyError: if it has no ``cells``, a cell has no ``cell_type``, or a graded or solution code
            cell has no ``grade_id``.
    """
    nb = json.loads(source.read_text(encoding="utf-8"))
    a = Assignment(name=source.parent.name, notebook=source.name, source_path=source,
                   release_dir=course / "notebooks" / source.parent.name, cells=nb["cells"])
    for i, cell in enumerate(nb["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("id"):
            a.cell_ids.add(cell["id"])
        if meta.get("grade_id"):
            a.grade_ids.add(meta["grade_id"])
        code = _source(cell)
        if cell["cell_type"] == "code" and is_grade(cell):
            public, hidden = split_hidden(code)
            a.tests.append(TestCell(meta["grade_id"], float(meta.get("points", 0)), public,
                                    hidden if hidden.strip() else "", i))
            a.test_sources.add(normalise(public))
        elif cell["cell_type"] == "code" and is_solution(cell):
            a.solution_ids.add(meta["grade_id"])
            a.graded_names.extend(n for n in defined_names(code) if n not in a.graded_names)
        if is_locked(cell) and meta.get("grade_id"):
            a.locked_sources[meta["grade_id"]] = code
    return a


def load_course(course: Path) -> dict[str, Assignment]:
    """Every assignment in ``course/solutions``: one folder per chapter, one notebook per folder."""
    out = {}
    solutions = course / "solutions"
    for folder in sorted(p for p in solutions.iterdir() if p.is_dir()) if solutions.is_dir() else []:
        for nb in sorted(folder.glob("*.ipynb")):
            a = load_assignment(course, nb)
            if a.tests:
                out[a.name if a.name not in out else f"{a.name}/{nb.stem}"] = a
    return out


def cell_timeout(course: Path, default: float = 120.0) -> float:
    """``ExecutePreprocessor.timeout`` from the course's nbgrader_config.py (per-cell seconds)."""
    config = course / "nbgrader_config.py"
    if not config.exists():
        return default
    from traitlets.config.loader import PyFileConfigLoader

    try:
        cfg = PyFileConfigLoader(config.name, path=str(course)).load_config()
        value = cfg.ExecutePreprocessor.get("timeout", default)
        return float(value) if value else default
    except Exception:  # a broken config must not stop grading
        return default


def code_cells(nb: dict) -> list[tuple[int, dict]]:
    """``(index, cell)`` for every code cell of a notebook dict; ``index`` counts all cells."""
    return [(i, c) for i, c in enumerate(nb.get("cells", [])) if isinstance(c, dict) and c.get("cell_type") == "code"]


def cell_source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    return _source(cell)


__all__ = ["Assignment", "TestCell", "load_course", "load_assignment", "split_hidden", "normalise",
           "defined_names", "cell_timeout", "code_cells", "cell_source"]
