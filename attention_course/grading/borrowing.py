"""Which graded functions of a submission are the course's own reference implementations.

The chapters show the helper package's code (``show_source``), so a student can hand in the
package's function instead of their own. Two analyses decide it, and either costs the exercise:

* **The source text** (:func:`borrowed`, cheap, and it explains a finding well): reads the cells the
  student wrote (not the notebook's own locked cells, which may use the package, e.g. ``from
  attention_course.grading import checks``) and follows every top-level name back to what it was
  bound from: a graded name whose final binding is, or whose code reaches, ``attention_course`` (by
  name, by a string naming it, or through another such name) is *borrowed*.
* **The objects** (a loop over ``sys.modules``, an ``exec``, a ``getattr`` on a computed name defeat
  the text): the exercise's reference implementations are listed in :data:`REFERENCES`; the clean
  checker computes their code fingerprints (:func:`reference_fingerprints`) and hands them to the
  worker, where a :class:`CallWatch` reports for each graded name the references its object is or
  reaches (:func:`reached_code`: wrappers, partials, bound methods, ``__call__``, closures, defaults,
  the globals its code names...) and those that started while the checks called it, called from
  code other than the package's (a profile function); the checker keeps only fingerprints of this
  chapter's references (:func:`judge_evidence`). A fingerprint is of the code, not of the object, so
  ``types.FunctionType(ref.__code__, ...)`` and an ``exec`` of the reference's source are the reference.

What this relies on: the student's code runs in the same interpreter as the worker's report, so a
submission that deliberately patches the grader's own objects (the watch's state, reached by walking
frames) could hide a reference. The watch makes the usual ways out visible instead of silent: setting
a profile or trace function during a call (seen by the profile function and by the worker's audit
hook, which also refuses replacing the watch's methods or code), starting a thread, calls and returns
that do not pair; those cost the exercise as ``tampering``. Not counted: a package function that is
not a reference but calls one (the chapters' helpers do so legitimately), and a modified copy of a
reference's source (other bytecode: plagiarism, not borrowing).
"""
from __future__ import annotations

import ast
import dis
import functools
import hashlib
import importlib
import _thread
import marshal
import os
import sys
import threading
import types

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


# ------------------------------------------------------------------------------ the objects
# The source text tells how a name was bound only when the code says it plainly; a loop over
# ``sys.modules``, an ``exec`` or a ``getattr`` on a computed name defeat it. What the student's
# worker runs decides instead: the code objects a graded function reaches (statically) or starts
# while the checks call it (dynamically) are compared with the exercise's reference implementations
# by a fingerprint of their code (see :func:`code_fingerprint`), computed in the clean checker.

#: graded name -> the package's functions that are its reference implementation ("module:qualname"):
#: the package's function of that name, and the grader's own reference where the checks have one.
#: ``tests/test_borrowing.py`` checks that every package function named like a graded one is listed.
REFERENCES: dict[str, tuple[str, ...]] = {
    # Ch. 1
    "final_context": ("attention_course.maths.bahdanau:final_context",),
    "accuracy_by_length": ("attention_course.training.seq2seq_metrics:accuracy_by_length",),
    # Ch. 2 (additive_score also in Ch. 3)
    "bidirectional_annotations": ("attention_course.maths.bahdanau:bidirectional_annotations",),
    "additive_score": ("attention_course.maths.bahdanau:additive_score", "attention_course.maths.scoring:additive_score",
                       "attention_course.grading.checks:bahdanau_reference_score"),
    "masked_softmax": ("attention_course.maths.self_attention:masked_softmax",
                       "attention_course.grading.checks:bahdanau_reference_softmax"),
    "context_vector": ("attention_course.maths.bahdanau:context_vector",
                       "attention_course.grading.checks:bahdanau_reference_context"),
    "decoder_step": ("attention_course.maths.bahdanau:decoder_step",),
    # Ch. 3
    "softmax": ("attention_course.maths.scoring:softmax",),
    "dot_product_score": ("attention_course.maths.scoring:dot_product_score",),
    "scaled_dot_product_score": ("attention_course.maths.scoring:scaled_dot_product_score",),
    "cosine_score": ("attention_course.maths.scoring:cosine_score",),
    "bilinear_score": ("attention_course.maths.scoring:bilinear_score",),
    "attention_pooling": ("attention_course.maths.scoring:attention_pooling",),
    # Ch. 4
    "self_attention": ("attention_course.maths.self_attention:self_attention",
                       "attention_course.grading.checks:loop_attention"),
    "causal_mask": ("attention_course.maths.self_attention:causal_mask",),
    "sinusoidal_positional_encoding": ("attention_course.maths.self_attention:sinusoidal_positional_encoding",),
    "is_permutation_equivariant": ("attention_course.maths.self_attention:is_permutation_equivariant",),
    # Ch. 5
    "split_heads": ("attention_course.maths.multi_head:split_heads", "attention_course.grading.checks:reference_split"),
    "merge_heads": ("attention_course.maths.multi_head:merge_heads", "attention_course.grading.checks:reference_merge"),
    "multi_head_attention": ("attention_course.maths.multi_head:multi_head_attention",),
    # Ch. 6 (causal_self_attention_with_cache has no reference function: the checks compare with a layer)
    "transformer_block": ("attention_course.maths.transformer:transformer_block",),
    "sample_next_token": ("attention_course.models.gpt:sample_next_token",),
    # Ch. 7
    "cross_attention": ("attention_course.grading.checks_transformer:cross_attention_reference",),
    "noam_lr": ("attention_course.training.date_training:noam_lr", "attention_course.grading.checks_transformer:noam_reference"),
    "linear_warmup_lr": ("attention_course.grading.checks_transformer:linear_warmup_reference",),
    "label_smoothing_loss": ("attention_course.maths.transformer:label_smoothing_loss",
                             "attention_course.grading.checks_transformer:smoothing_reference"),
    "greedy_decode": ("attention_course.models.decoding:greedy_decode",),
    # Ch. 8
    "rms_norm": ("attention_course.maths.modern:rms_norm", "attention_course.grading.checks_modern:rms_norm_reference"),
    "apply_rope": ("attention_course.maths.positions:apply_rope", "attention_course.grading.checks_modern:rope_reference"),
    "rope_attention": ("attention_course.grading.checks_modern:rope_attention_reference",),
    "grouped_query_attention": ("attention_course.maths.modern:grouped_query_attention",
                                "attention_course.grading.checks_modern:gqa_reference"),
}


_OPS = dis.opmap
_CACHE, _EXTENDED = _OPS.get("CACHE", 0), _OPS["EXTENDED_ARG"]
_LOAD_ATTR, _LOAD_METHOD = _OPS["LOAD_ATTR"], _OPS.get("LOAD_METHOD", -1)
# the low bit of these opcodes' argument says whether a NULL or a method goes with it: the compiler
# picks it by whether the name was imported in the same compilation (so an exec of a function's source
# alone compiles np.exp(...) otherwise than its module did)
_HALVED = frozenset({_OPS["LOAD_GLOBAL"]} | ({_LOAD_ATTR} if sys.version_info >= (3, 12) else set()))
_JUMPS = frozenset(getattr(dis, "hasjump", dis.hasjrel + dis.hasjabs))


def _normal_bytecode(code: types.CodeType) -> bytes:
    """The bytecode without its inline caches and jump offsets, LOAD_METHOD read as LOAD_ATTR, and the
    NULL/method bit of LOAD_GLOBAL (and, from 3.12, LOAD_ATTR) dropped."""
    out, raw, extended = bytearray(), code.co_code, 0
    for i in range(0, len(raw) - 1, 2):
        op, arg = raw[i], raw[i + 1] | extended
        extended = arg << 8 if op == _EXTENDED else 0
        if op in (_EXTENDED, _CACHE):
            continue
        op = _LOAD_ATTR if op == _LOAD_METHOD else op
        arg = 0 if op in _JUMPS else arg >> 1 if op in _HALVED else arg
        out += bytes((op,)) + arg.to_bytes(4, "little")
    return bytes(out)


def _const_key(value, depth: int):
    """A marshal-able, hash-seed independent stand-in for a constant of a code object."""
    if isinstance(value, types.CodeType):
        return ("code", _code_key(value, depth + 1)) if depth < 8 else ("code", value.co_name)
    if isinstance(value, (frozenset, set)):
        return ("frozenset", tuple(sorted(repr(v) for v in value)))
    if isinstance(value, tuple):
        return ("tuple", tuple(_const_key(v, depth) for v in value))
    return value


def _shape_key(code: types.CodeType) -> tuple:
    return (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_names, code.co_varnames)


def _code_key(code: types.CodeType, depth: int = 0) -> tuple:
    return (_shape_key(code), _normal_bytecode(code), tuple(_const_key(c, depth) for c in code.co_consts))


def _digest(key: tuple, size: int) -> str:
    return hashlib.sha256(marshal.dumps(key)).hexdigest()[:size]


def code_shape(code: types.CodeType) -> str:
    """The first part of :func:`code_fingerprint`, cheap to compute: argument counts, names and local names."""
    return _digest(_shape_key(code), 12)


def code_fingerprint(code: types.CodeType) -> str:
    """A fingerprint of what a code object does: ``"<shape>-<code>"``, :func:`code_shape`, then its
    bytecode (read as :func:`_normal_bytecode` says), constants (nested code included), the names and
    local variable names it uses, its argument counts; not its file, line numbers, flags or name.

    The same in every process of one Python version, so a copy of a function made with
    ``types.FunctionType(f.__code__, ...)`` or by an ``exec`` of its source has ``f``'s fingerprint.

    Raises:
        TypeError: if ``code`` is not a code object.
    """
    if not isinstance(code, types.CodeType):
        raise TypeError(f"code_fingerprint needs a code object, not {type(code).__name__}")
    return f"{code_shape(code)}-{_digest(_code_key(code), 24)}"


@functools.lru_cache(maxsize=64)
def _module_code(module: str) -> types.CodeType:
    """The code of one of the package's modules, compiled from its file (the module is not imported:
    Chapter 3's checker need not load torch for a reference in a torch module).

    Raises:
        OSError, SyntaxError, ValueError: if it is not a module file of the package or does not compile.
    """
    if not _is_package(module):
        raise ValueError(f"{module} is not a module of {PACKAGE}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, *module.split(".")) + ".py"
    with open(path, encoding="utf-8") as handle:
        return compile(handle.read(), path, "exec", dont_inherit=True)


def _nested(code: types.CodeType, qualname: str) -> types.CodeType | None:
    """The code object a module's code defines under ``qualname`` (``"f"``, ``"Class.method"``), or None."""
    for part in qualname.split("."):
        code = next((c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == part), None)
        if code is None:
            return None
    return code


def reference_fingerprints(graded: list[str]) -> dict[str, tuple[str, str]]:
    """fingerprint -> (graded name, "module.qualname") of the reference implementations of ``graded``
    (:data:`REFERENCES`), compiled from the package's files (run it in the clean checker, never where
    student code ran: there a module may have been replaced). A function's code compiled from its
    module's file is the code the imported function runs.

    A graded name without a reference, or a reference whose file is missing, adds nothing.
    """
    found: dict[str, tuple[str, str]] = {}
    for name in graded:
        for target in REFERENCES.get(name, ()):
            module, qualname = target.split(":")
            try:
                code = _nested(_module_code(module), qualname)
            except (OSError, SyntaxError, ValueError):
                continue
            if code is not None:
                found[code_fingerprint(code)] = (name, f"{module}.{qualname}")
    return found


# ------------------------------------------------------------------------------ in the worker
_STEPS_PER_CONTAINER = 200


def _used_names(code: types.CodeType, depth: int = 0) -> set[str]:
    """The global and attribute names a code object (and the code nested in it) uses."""
    names = set(code.co_names)
    if depth < 8:
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names |= _used_names(const, depth + 1)
    return names


def _function_parts(fn: types.FunctionType) -> list[tuple[object, str]]:
    """What a student's function reaches: the globals its code names, its closure's cells, its
    default arguments and a ``__wrapped__`` (``functools.wraps``); nothing of it runs."""
    code, parts = fn.__code__, []
    scope = fn.__globals__
    for name in sorted(_used_names(code)):
        if type(scope) is dict and name in scope:
            parts.append((scope[name], f" -> global {name}"))
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            parts.append((cell.cell_contents, f" -> closure {name}"))
        except ValueError:  # an empty cell
            pass
    parts += [(value, " -> default argument") for value in fn.__defaults__ or ()]
    parts += [(value, f" -> default {key}") for key, value in (fn.__kwdefaults__ or {}).items()]
    own = fn.__dict__
    if type(own) is dict and "__wrapped__" in own:
        parts.append((own["__wrapped__"], " -> __wrapped__"))
    return parts


def _instance_parts(obj) -> list[tuple[object, str]]:
    """A class's own functions (also static and class methods), or an instance's class and attributes."""
    if isinstance(obj, type):
        namespace = type.__dict__["__dict__"].__get__(obj)
        return [(value, f".{key}") for key, value in list(namespace.items())[:_STEPS_PER_CONTAINER]
                if isinstance(value, (types.FunctionType, staticmethod, classmethod, functools.partial))]
    parts: list[tuple[object, str]] = [(type(obj), " -> its class")]
    own = None
    for cls in type.__dict__["__mro__"].__get__(type(obj)):  # the instance dictionary, without running a property
        slot = type.__dict__["__dict__"].__get__(cls).get("__dict__")
        if slot is not None:
            own = slot.__get__(obj) if type(slot) is types.GetSetDescriptorType else None
            break
    if type(own) is dict:
        parts += [(value, f".{key}") for key, value in list(own.items())[:_STEPS_PER_CONTAINER]]
    return parts


def _parts(obj, names: set[str]) -> list[tuple[object, str]]:
    """The objects ``obj`` holds that could be, or lead to, a function (see :func:`reached_code`)."""
    kind = type(obj)
    if kind is types.FunctionType:
        return _function_parts(obj)
    if kind is types.MethodType:
        return [(obj.__func__, " -> method"), (obj.__self__, " -> its object")]
    if kind in (staticmethod, classmethod):
        return [(obj.__func__, "")]
    if isinstance(obj, functools.partial):
        return [(functools.partial.func.__get__(obj), " -> partial"),
                *[(v, " -> partial argument") for v in functools.partial.args.__get__(obj)],
                *[(v, f" -> partial {k}") for k, v in functools.partial.keywords.__get__(obj).items()]]
    if kind is types.ModuleType:
        namespace = types.ModuleType.__dict__["__dict__"].__get__(obj)
        return [(namespace[n], f".{n}") for n in sorted(names) if n in namespace]
    if kind is dict:
        return [(v, f"[{k!r}]"[:40]) for k, v in list(dict.items(obj))[:_STEPS_PER_CONTAINER]]
    if kind in (list, tuple, set, frozenset):
        return [(v, "[...]") for v in list(obj)[:_STEPS_PER_CONTAINER]]
    if isinstance(obj, type) or kind.__flags__ & (1 << 9):  # a class, or an instance of a Python class
        return _instance_parts(obj)
    return []


def reached_code(root, label: str, student_code, limit: int = 2000) -> list[tuple[types.CodeType, str]]:
    """``(code, route)`` of every function ``root`` is or reaches without running any of its code:
    through ``functools.wraps``/``__wrapped__``, ``functools.partial``, bound methods, a class's or an
    instance's methods (``__call__``...), closures, default arguments, and the globals, module attributes,
    dict values and list items its code names, recursively (at most ``limit`` objects, 200 per container).

    Args:
        root: the object a graded name is bound to.
        label: its name (routes start with it, e.g. ``"softmax -> global reference.softmax"``).
        student_code: ``student_code(code) -> bool``: only the student's functions are followed further
            (the package's, NumPy's... are listed, not opened).
    """
    found, seen, queue = [], set(), [(root, label, set())]
    while queue and len(seen) < limit:
        obj, route, names = queue.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if type(obj) is types.FunctionType:
            found.append((obj.__code__, route))
            if not student_code(obj.__code__):
                continue
            names = _used_names(obj.__code__)
        try:
            parts = _parts(obj, names)
        except Exception:  # noqa: BLE001 - an odd object: nothing more to follow
            continue
        queue.extend((child, (route + step)[:300], names) for child, step in parts)
    return found


class CallWatch:
    """In the worker: which reference implementations a graded object is, reaches, or starts while called.

    ``fingerprints`` (from the checker's :func:`reference_fingerprints`) are the only thing it knows
    of the references; it never imports them. While :meth:`start` .. :meth:`stop` are open (a call
    of the checker), a profile function (``sys.setprofile``, on Python 3.11 as on 3.13) notes every
    start of a code object with one of those fingerprints whose caller is not the package's own code
    (the chapters' helpers may use the references; the student's code, NumPy's or the standard
    library's calling one counts), and notes as *tampering* the student's code calling
    ``sys.setprofile``, ``sys.settrace``, ``sys.getprofile``, ``sys.gettrace`` or ``threading.setprofile``,
    ``_thread.start_new_thread`` (a thread would run untraced), any code setting a profile or trace
    function during a call (the worker's audit hook tells :meth:`audit`: also when C code calls
    ``sys.setprofile``, which no profile function sees), the profile function being gone after a call,
    or its events out of step (calls and returns that do not pair, as when profiling was switched off
    and on again in between).

    Args:
        fingerprints: the references' code fingerprints.
        trusted_roots: folders whose code is not the student's (the Python installation);
        package_dir: the package's folder (its code is trusted, and its calls of a reference are the
            chapters' own).
    """

    GUARDED = ("setprofile", "settrace", "getprofile", "gettrace")

    def __init__(self, fingerprints, trusted_roots, package_dir: str):
        self.wanted = frozenset(str(f) for f in fingerprints)
        self.shapes = frozenset(f.split("-")[0] for f in self.wanted)
        self.fingerprint, self.shape = code_fingerprint, code_shape
        self.package = tuple({package_dir.rstrip(os.sep) + os.sep, os.path.realpath(package_dir) + os.sep})
        self.trusted = tuple(r.rstrip(os.sep) + os.sep for r in trusted_roots if r) + self.package
        self.guarded = {id(getattr(sys, n)): "sys." + n for n in self.GUARDED}
        self.guarded[id(threading.setprofile)] = "threading.setprofile"
        for name in ("start_new_thread", "start_joinable_thread"):  # a thread would run untraced
            if hasattr(_thread, name):
                self.guarded[id(getattr(_thread, name))] = "_thread." + name
        self.own = False  # True while this watch sets the profile function itself (see audit)
        self.timing_out = False  # True from a time limit's alarm to the end of the call (see time_is_up)
        self.matches: dict[int, str] = {}      # id(code) -> its fingerprint if wanted, else ""
        self.where: dict[int, int] = {}        # id(code) -> 0 student's, 1 trusted, 2 package
        self.kept: list = []                   # the codes of both, kept alive so their ids stay theirs
        self.records: list[tuple[object, set, list]] = []  # (key, hits, tampering) of the calls in progress
        self.evidence: dict[object, tuple[set, list]] = {}
        self.frames: list = []
        self.setprofile, self.getprofile = sys.setprofile, sys.getprofile
        self.profiler = self._make_profile()  # sys.getprofile() is compared with it

    # ---- what a code object is
    def _where(self, code) -> int:
        where = self.where.get(id(code))
        if where is None:
            name = code.co_filename if isinstance(code.co_filename, str) else ""
            where = 2 if name.startswith(self.package) else 1 if name.startswith(self.trusted) else 0
            self.where[id(code)] = where
            self.kept.append(code)
        return where

    def student_code(self, code) -> bool:
        """True for code the submission wrote (a cell, an ``exec``, a file it wrote), not the Python installation's."""
        return self._where(code) == 0

    def match(self, code) -> str:
        """The reference fingerprint of ``code``, or "" if it is none of the references."""
        found = self.matches.get(id(code))
        if found is None:
            try:
                found = self.fingerprint(code) if self.shape(code) in self.shapes else ""
            except Exception:  # noqa: BLE001
                found = ""
            found = found if found in self.wanted else ""
            self.matches[id(code)] = found
            self.kept.append(code)
        return found

    # ---- the static part
    def reaches(self, obj, label: str) -> list[tuple[str, str]]:
        """``(fingerprint, route)`` of the references ``obj`` is or reaches (:func:`reached_code`)."""
        return [(fp, route) for code, route in reached_code(obj, label, self.student_code)
                if (fp := self.match(code))]

    # ---- the dynamic part
    def start(self, key) -> None:
        """A call of the student's object ``key`` (the worker's handle) begins: trace it (nested calls too)."""
        self.records.append((key, set(), []))
        if len(self.records) == 1:
            self.frames.clear()
            self._set(self.profiler)

    def _set(self, function) -> None:
        self.own = True
        try:
            self.setprofile(function)
        finally:
            self.own = False

    def time_is_up(self) -> None:
        """The worker's time limit fired during a traced call (its ``SIGALRM`` handler says so before raising).

        The handler's exception may be raised inside the profile function, and Python then removes the
        profile function itself, with a ``sys.setprofile`` audit event that is not the student's: until
        the call ends, such events are not tampering (the call has failed on its time limit anyway, and
        :meth:`stop` is told ``timed_out``)."""
        self.timing_out = True

    def audit(self, event: str) -> None:
        """Told by the worker's audit hook of every ``sys.setprofile``/``sys.settrace``: during a call, unless
        this watch's own or the time limit's (:meth:`time_is_up`), that is tampering (also when called from
        C code, e.g. ``map(sys.setprofile, ...)``)."""
        if self.records and not self.own and not self.timing_out:
            self.records[-1][2].append(f"its code called {event}")

    def stop(self, timed_out: bool = False) -> None:
        """The innermost call ends: keep what it found under its key; stop tracing after the outermost.

        Args:
            timed_out: the call was stopped by its time limit (which may stop the profile function too).
        """
        if not self.records:
            return
        if self.getprofile() is not self.profiler and not timed_out:
            self.records[-1][2].append("the profile function was replaced during the call")
        key, hits, tampering = self.records.pop()
        if not self.records:
            self.timing_out = False
            self._set(None)
        elif self.getprofile() is not self.profiler:
            self._set(self.profiler)
        known = self.evidence.setdefault(key, (set(), []))
        known[0].update(hits)
        known[1].extend(t for t in tampering if t not in known[1])

    def _make_profile(self):
        """The profile function (see the class's description), a closure over this watch's state so that
        its hot path (every call and C call of the traced code) reads locals only. It never raises."""
        frames, records, matches, guarded = self.frames, self.records, self.matches, self.guarded
        match, where, watch = self.match, self._where, self

        def profile(frame, event, arg):
            try:
                if event == "c_call":
                    if id(arg) in guarded and where(frame.f_code) != 2:
                        records[-1][2].append(f"its code called {guarded[id(arg)]}")
                elif event == "call":
                    frames.append(frame)
                    code = frame.f_code
                    fp = matches.get(id(code))
                    if fp is None:
                        fp = match(code)
                    if fp and (frame.f_back is None or where(frame.f_back.f_code) != 2):
                        caller = frame.f_back.f_code.co_name if frame.f_back is not None else "?"
                        records[-1][1].add((fp, str(caller)[:80]))
                elif event == "return":
                    if frames and frames[-1] is frame:
                        frames.pop()
                    elif frames:  # events were lost: profiling was off for a while
                        if not watch.timing_out:  # a time limit's exception inside this function loses events too
                            records[-1][2].append("the call tracing was interrupted (a return without its call)")
                        frames.clear()
            except Exception:  # noqa: BLE001 - a profile function that raises is switched off
                pass

        return profile

    def report(self, keys: dict) -> dict:
        """What was found for each graded name, as plain data for the checker.

        Args:
            keys: graded name -> (the object it is bound to, the worker's handle of it or None).

        Returns:
            graded name -> ``{"static": [[fingerprint, route]...], "dynamic": [[fingerprint, caller]...],
            "tampering": [...]}`` (names with nothing found are left out).
        """
        out = {}
        for name, (obj, handle) in keys.items():
            try:
                static = [list(x) for x in self.reaches(obj, name)]
            except Exception:  # noqa: BLE001
                static = []
            hits, tampering = self.evidence.get(handle, (set(), []))
            if static or hits or tampering:
                out[name] = {"static": static[:20], "dynamic": sorted(list(h) for h in hits)[:20],
                             "tampering": list(tampering)[:10]}
        return out


# ------------------------------------------------------------------------------ in the checker
def _strings(items, limit: int) -> list[list[str]]:
    """The ``[str, str]`` pairs of an untrusted list, at most ``limit``."""
    if not isinstance(items, list):
        return []
    return [item for item in items[:limit] if isinstance(item, list) and len(item) == 2
            and all(isinstance(x, str) for x in item)]


def judge_evidence(evidence: dict, references: dict[str, tuple[str, str]], graded: list[str]) -> dict[str, dict]:
    """Decide, in the checker, from the worker's report which graded names are the course's references.

    Args:
        evidence: what :meth:`CallWatch.report` answered (untrusted data: anything malformed is ignored).
        references: :func:`reference_fingerprints` of this chapter's graded names, computed here: a
            fingerprint the worker names counts only if it is one of them.
        graded: the chapter's graded names.

    Returns:
        graded name -> ``{"found": [why...], "tampering": [what...]}`` for the names with either, e.g.
        ``"softmax -> global reference.softmax has the code of attention_course.maths.scoring.softmax"`` or
        ``"calling softmax ran attention_course.maths.scoring.softmax (called by softmax)"``.
    """
    judged = {}
    for name in graded:
        entry = evidence.get(name) if isinstance(evidence, dict) else None
        if not isinstance(entry, dict):
            continue
        found = [f"{route[:200]} has the code of {references[fp][1]}"
                 for fp, route in _strings(entry.get("static"), 20) if fp in references]
        found += [f"calling {name} ran {references[fp][1]} (called by {caller[:80]})"
                  for fp, caller in _strings(entry.get("dynamic"), 20) if fp in references]
        tampering = entry.get("tampering")
        tampering = [t[:200] for t in tampering[:5] if isinstance(t, str)] if isinstance(tampering, list) else []
        if found or tampering:
            judged[name] = {"found": sorted(set(found)), "tampering": tampering}
    return judged
