"""Which graded functions of a submission are the course's own reference implementations.

The chapters show the helper package's code (``show_source``), so a student can hand in
``from attention_course.maths.scoring import softmax``, an alias of it, a wrapper that forwards to it,
``getattr(importlib.import_module("attention_course.maths.scoring"), "softmax")`` or a
``from attention_course.maths.scoring import *``. This reads the cells the student wrote (not the
notebook's own locked cells, which may use the package, e.g. ``from attention_course.grading
import checks``) and follows every top-level name back to what it was bound from: a graded name whose
final binding is, or whose code reaches, ``attention_course`` (by name, by a string naming it, or
through another such name) is *borrowed*.
"""
from __future__ import annotations

import ast
import importlib

PACKAGE = "attention_course"


def _is_package(module: str | None) -> bool:
    return bool(module) and (module == PACKAGE or module.startswith(PACKAGE + "."))


def _mentions_package(node: ast.AST) -> bool:
    """The code names the package itself (import, name, or a string such as an importlib target)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import) and any(_is_package(a.name) for a in sub.names):
            return True
        if isinstance(sub, ast.ImportFrom) and _is_package(sub.module):
            return True
        if isinstance(sub, ast.Name) and sub.id == PACKAGE:
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and PACKAGE in sub.value:
            return True
    return False


def _names_used(node: ast.AST) -> set[str]:
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}


def _star_names(module: str) -> set[str]:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - an unknown module: nothing it could export
        return set()
    exported = getattr(mod, "__all__", None)
    return set(exported) if exported is not None else {n for n in vars(mod) if not n.startswith("_")}


def allowed_imports(trusted_sources: list[str]) -> set[tuple[str, str]]:
    """(module, name) pairs the notebook's own cells import from the package (not borrowing).

    Args:
        trusted_sources: the code of the notebook's own (not the student's) cells; a cell that does
            not parse is skipped.
    """
    pairs = set()
    for code in trusted_sources:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _is_package(node.module):
                pairs.update((node.module, a.name) for a in node.names)
    return pairs


def borrowed(student_sources: list[str], graded: list[str], allowed: set[tuple[str, str]]) -> dict[str, str]:
    """Which graded names reach the package, and how.

    Args:
        student_sources: the code cells the student wrote (cells that do not parse are skipped).
        graded: the names the checks grade.
        allowed: ``(module, name)`` imports that are not borrowing (see :func:`allowed_imports`).

    Returns:
        graded name -> how it reaches the package (e.g. ``"from attention_course.maths.scoring
        import softmax"``, ``"softmax uses reference (...)"``), for every graded name that does.
    """
    tainted = _tainted(_bindings(student_sources, allowed))
    return {name: tainted[name] for name in graded if name in tainted}


def _bindings(student_sources: list[str], allowed: set[tuple[str, str]]) -> dict[str, tuple[str, ast.AST | None]]:
    """name -> (how it was imported from the package, None) or ("", the node to inspect), the last
    top-level binding of each name in the student's cells, in order."""
    binding: dict[str, tuple[str, ast.AST | None]] = {}
    for code in student_sources:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            _bind(node, binding, allowed)
    return binding


def _bind(node: ast.stmt, binding: dict, allowed: set[tuple[str, str]]) -> None:
    """Record in ``binding`` what one top-level statement binds (see :func:`_bindings`)."""
    if isinstance(node, ast.ImportFrom) and _is_package(node.module):
        _bind_package_import(node, binding, allowed)
    elif isinstance(node, ast.Import):
        for a in node.names:
            bound = a.asname or a.name.split(".")[0]
            if _is_package(a.name):
                binding[bound] = (f"import {a.name}", None)
            else:
                binding.pop(bound, None)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        binding[node.name] = ("", node)
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    binding[sub.id] = ("", node.value)


def _bind_package_import(node: ast.ImportFrom, binding: dict, allowed: set[tuple[str, str]]) -> None:
    """``from attention_course... import ...``: each name is borrowed unless the notebook itself imports it."""
    for a in node.names:
        if a.name == "*":
            for name in _star_names(node.module):
                if (node.module, name) not in allowed:
                    binding[name] = (f"from {node.module} import *", None)
        elif (node.module, a.name) in allowed:
            binding.pop(a.asname or a.name, None)
        else:
            binding[a.asname or a.name] = (f"from {node.module} import {a.name}", None)


def _tainted(binding: dict[str, tuple[str, ast.AST | None]]) -> dict[str, str]:
    """name -> how it reaches the package: imported from it, naming it in its code, or using (through
    any number of wrappers and aliases) another such name."""
    tainted: dict[str, str] = {}
    for name, (how, node) in binding.items():
        if node is None:
            tainted[name] = how
        elif _mentions_package(node):
            tainted[name] = f"{name} names {PACKAGE} in its code"
    changed = True
    while changed:  # wrappers of wrappers, aliases of aliases
        changed = False
        for name, (how, node) in binding.items():
            if name in tainted or node is None:
                continue
            via = sorted(_names_used(node) & set(tainted) - {name})
            if via:
                tainted[name] = f"{name} uses {via[0]} ({tainted[via[0]]})"
                changed = True
    return tainted
