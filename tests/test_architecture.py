"""The helper package's layers (ARCHITECTURE.md): imports run downwards only, never in a circle.

Every import of the package's own modules is read from the source (including imports inside
functions), so a lower layer that reaches up for a higher one, even lazily, fails here.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attention_course"
#: The layer folders from the bottom up; ``env`` (a module at the top of the package) is below all.
LAYERS = ["env", "maths", "data", "models", "training", "views", "grading"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself
        return -1
    return LAYERS.index(parts[1])


def imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports (resolved to modules, not names)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "attention_course"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "attention_course":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found - {module}


def test_every_module_lives_in_a_layer_folder():
    loose = [m for m in MODULES if m.count(".") == 1 and m not in ("attention_course.env",)
             and m.split(".")[1] not in LAYERS]
    assert not loose, f"modules outside the layer folders {LAYERS}: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module):
    upward = [other for other in imports(module) if layer(other) > layer(module)]
    assert not upward, (f"{module} (layer {LAYERS[layer(module)]}) imports the higher {upward}: move the shared "
                        "piece down, or the caller up")


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for other in sorted(graph[m]):
            if state.get(other) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(other):] + [other]))
            if other not in state:
                visit(other)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_re_export(module):
    """A module's ``__all__`` names only what it defines: callers import each name from its home."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    defined, public = set(), []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                    if target.id == "__all__":
                        public = [ast.literal_eval(e) for e in node.value.elts]
    borrowed = [name for name in public if name not in defined]
    assert not borrowed, f"{module}.__all__ lists names defined elsewhere: {borrowed}"


def test_the_architecture_page_names_every_folder_and_module():
    page = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for m, p in MODULES.items()
               if p.name not in ("__init__.py", "__main__.py") and str(p.relative_to(PACKAGE)) not in page]
    missing += [f"attention_course/{folder}/" for folder in LAYERS[1:] if f"{folder}/" not in page]
    assert not missing, f"ARCHITECTURE.md does not describe: {missing}"


def _body_lines(function: ast.FunctionDef) -> int:
    body = function.body
    docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1
    start = body[1].lineno if docstring else body[0].lineno
    return function.end_lineno - start + 1


def test_functions_fit_the_budget():
    """No function of the package has a body (without its docstring) over 60 lines (ARCHITECTURE.md, "Budget";
    ruff checks complexity and statements)."""
    long = [f"{module}.{node.name}: {_body_lines(node)} lines" for module, path in MODULES.items()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > 60]
    assert not long, "split these functions: " + "; ".join(long)
