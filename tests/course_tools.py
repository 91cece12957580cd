"""Run nbgrader on a throw-away copy of the course, so tests never touch the repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def assignments() -> list[str]:
    """Assignment names: one folder per chapter in solutions/."""
    return sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader ARGS`` in ``course``; fail with its output if it fails.

    nbgrader runs the ``alembic`` command when it creates a gradebook, so the
    environment's bin folder goes first on PATH.
    """
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def generated_course(tmp: Path) -> Path:
    """A copy of the course (config + solutions) in which nbgrader has generated every assignment
    (one ``generate_assignment`` run), so its gradebook knows every source notebook."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    nbgrader(course, "generate_assignment", "*", "--force")  # "*": a glob of solutions/
    return course


def autograde(course: Path, assignment: str, submissions: dict[str, list[Path]]) -> dict[str, tuple[float, float]]:
    """Autograde each student's notebooks in one ``nbgrader autograde`` run; return {student: (score, max_score)}."""
    from nbgrader.api import Gradebook

    for student, notebooks in submissions.items():
        target = course / "submitted" / student / assignment
        target.mkdir(parents=True)
        for notebook in notebooks:
            shutil.copy(notebook, target / notebook.name)
    nbgrader(course, "autograde", assignment, "--force")
    with Gradebook("sqlite:///" + str(course / ".nbgrader" / "gradebook.db")) as gb:
        return {s: (gb.find_submission(assignment, s).score, gb.find_submission(assignment, s).max_score)
                for s in submissions}


class ExerciseNotebook:
    """An nbgrader source notebook, read the way the exercise-check tests need it.

    Attributes:
        path: the notebook in ``solutions/``.
        sources: ``{grade_id: source}`` of every code cell with nbgrader metadata (solution
            cells and check cells).
        graded: the grade ids of the check cells (public and hidden tests), in order.
        solution: the sources of the other code cells after the Colab setup cell (imports
            and solution functions), in order.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        cells = json.loads(self.path.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells[1:] if c["cell_type"] == "code"]  # cells[0]: the Colab setup

        def meta(cell):
            return cell["metadata"].get("nbgrader", {})

        self.sources = {meta(c)["grade_id"]: "".join(c["source"]) for c in code if meta(c).get("grade_id")}
        self.graded = [meta(c)["grade_id"] for c in code if meta(c).get("grade")]
        self.solution = ["".join(c["source"]) for c in code if not meta(c).get("grade")]

    def public(self, grade_id: str) -> str:
        """The public part of a check cell: what the student sees and runs (hidden tests cut off)."""
        return self.sources[grade_id].split("### BEGIN HIDDEN TESTS")[0]

    def namespace(self) -> dict:
        """A fresh namespace in which the notebook's imports and solution cells have run."""
        ns: dict = {}
        for source in self.solution:
            exec(compile(source, f"<{self.path.name} solution>", "exec"), ns)
        return ns

    def run(self, check_id: str, implementation: str, public: bool = True) -> str:
        """Run check ``check_id`` after ``implementation`` (a student's answer, as source code).

        Returns the check's AssertionError message, ``""`` if it passed. ``public`` runs only what
        the student sees (hidden tests cut off).

        Raises:
            AssertionError: if the check let any other exception through to the student (a raw
                framework error instead of a message that names the mistake).
        """
        ns = self.namespace()  # imports and the reference solutions
        exec(compile(textwrap.dedent(implementation), "<wrong answer>", "exec"), ns)
        source = self.public(check_id) if public else self.sources[check_id]
        try:
            exec(compile(source, check_id, "exec"), ns)
        except AssertionError as error:
            return str(error)
        except Exception as error:  # a raw error reached the student
            raise AssertionError(f"{check_id} let a raw {type(error).__name__} through: {error}") from None
        return ""


#: What every exercise notebook may import besides its chapter's checks: the checks' messages (the
#: catalogue that speaks the notebook's language; no answers in it).
ALLOWED = {"attention_course.grading.messages"}


def course_imports(path: Path) -> set[str]:
    """The helper-package modules a notebook's code cells import, after the Colab setup cell.

    The exercises may import ``attention_course.grading.checks`` (the checks' wording) and :data:`ALLOWED`,
    never a module that holds the answers (``seq2seq``, ``self_attention``, ...).
    """
    import ast

    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    found: set[str] = set()
    for cell in cells[1:]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "attention_course"}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "attention_course":
                is_folder = (ROOT / node.module.replace(".", "/")).is_dir()  # a package: its names are modules
                found |= {f"{node.module}.{a.name}" if is_folder else node.module for a in node.names}
    return found


# ---------------------------------------------------------------------------- Chapter 8, exercise 2 (RoPE)
# A correct apply_rope with named parts to replace, for the wrong-answer tests of test_ch08_exercises.py:
# BASE (the frequency base), POSITIONS (the positions used), ROTATED (the result).
ROPE_TEMPLATE = """
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    theta = BASE ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = POSITIONS.to(torch.float64)[:, None] * theta
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return ROTATED
"""
GOOD_ROPE = {"BASE": "base", "POSITIONS": "positions", "ROTATED": "x * cos + torch.cat([-x2, x1], dim=-1) * sin"}


def rope_source(**change) -> str:
    """ROPE_TEMPLATE with the correct parts, except those given (e.g. ``BASE="10000.0"``)."""
    body = ROPE_TEMPLATE
    for key, value in {**GOOD_ROPE, **change}.items():
        body = body.replace(key, value)
    return body
