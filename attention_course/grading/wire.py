"""The two pipes between the checker and the sandboxed worker.

* checker -> worker: ordinary pickles (the checker is trusted; the worker may unpickle anything).
  Objects that must not be copied travel as pickle *persistent ids*: proxies of the student's own
  objects (``("obj", handle)``), the checker's own callables and test-cell objects
  (``("cb", key, name)``: the worker gets a :class:`CheckerProxy` that calls back), and, in the
  reply to a callback, the worker's own arguments (``("orig", index)``).
* worker -> checker: untrusted. The worker flattens every value to a tree of tagged tuples made of
  ``None``/``bool``/``int``/``float``/``str``/``bytes``/``list``/``tuple``/``dict`` and ``.npy``
  bytes, which the checker unpickles with a loader that refuses every global, and decodes arrays
  with ``np.load(allow_pickle=False)``. So a submission can send back numbers, but never code,
  never an object whose ``__eq__`` it wrote, never a patched ``numpy``.

Arguments are passed by value, so what a function does to its *mutable* arguments (arrays,
tensors, NumPy and torch random generators, lists, dicts, nested in lists/tuples/dicts) is mirrored
back onto the caller's objects after the call (:func:`mutables`, :func:`snapshot`,
:func:`changed`, :func:`copy_into`), in both directions, keeping the caller's object identities.
"""
from __future__ import annotations

import copy
import hashlib
import io
import math
import os
import pickle
import struct
import sys

import numpy as np

MAX_MESSAGE = 512 * 1024 * 1024  # bytes; a bigger reply is refused
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class ProtocolError(Exception):
    """The worker sent something that is not a well-formed reply (or died)."""


def _torch():
    return sys.modules.get("torch")


def rebuild_tensor(array, dtype: str, requires_grad: bool):
    """Unpickling side of :meth:`_Pickler.reducer_override` (runs in the worker).

    Args:
        array: the tensor's values as a NumPy array (bfloat16 travels as float32).
        dtype: the torch dtype's name, e.g. ``"float32"``.
        requires_grad: whether the tensor is a leaf that requires grad.

    Returns:
        The torch tensor.
    """
    import torch

    tensor = torch.from_numpy(array)
    if str(tensor.dtype).replace("torch.", "") != dtype:
        tensor = tensor.to(getattr(torch, dtype))
    return tensor.requires_grad_(True) if requires_grad else tensor


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        """Plain CPU tensors travel as NumPy arrays (torch's own pickling goes through torch.save
        and torch.load: ~0.5 ms a tensor). A tensor that is the result of a graph becomes a leaf
        with the same values and requires_grad; the graph cannot cross processes anyway."""
        torch = _torch()
        if torch is None or type(obj) is not torch.Tensor:
            return NotImplemented
        try:
            if obj.layout != torch.strided or obj.device.type != "cpu" or obj.is_quantized:
                raise TypeError
            dtype = str(obj.dtype).replace("torch.", "")
            plain = obj.detach().resolve_conj().resolve_neg()
            if dtype == "bfloat16":
                plain = plain.float()
            return rebuild_tensor, (plain.numpy(), dtype, bool(obj.requires_grad))
        except (TypeError, RuntimeError):  # sparse, meta, a dtype NumPy lacks...: torch's own way
            if obj.requires_grad and obj.grad_fn is not None:
                return obj.detach().requires_grad_(True).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
            return NotImplemented


def dumps(obj, persistent_id=None) -> bytes:
    """Pickle ``obj`` for the checker -> worker pipe (plain CPU tensors travel as NumPy arrays).

    Args:
        obj: the message.
        persistent_id: the pickler's ``persistent_id`` hook, or None (see the module docstring).

    Raises:
        pickle.PicklingError, TypeError, AttributeError...: if ``obj`` cannot be pickled.
    """
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    if persistent_id is not None:
        pickler.persistent_id = persistent_id
    pickler.dump(obj)
    return buffer.getvalue()


def send_bytes(fd: int, data: bytes) -> None:
    """Write one message to ``fd``: its length (8 bytes, big-endian), then ``data``, all of it.

    Raises:
        OSError: e.g. BrokenPipeError when the other process has closed the pipe.
    """
    payload = struct.pack("!Q", len(data)) + data
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def send(fd: int, obj, persistent_id=None) -> None:
    """Send ``obj`` to ``fd`` as one message (:func:`dumps`, then :func:`send_bytes`).

    Pickling comes first: a value that cannot be pickled raises before anything is written.

    Raises:
        pickle.PicklingError, TypeError...: see :func:`dumps`; OSError: see :func:`send_bytes`.
    """
    send_bytes(fd, dumps(obj, persistent_id))


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ProtocolError("the student's process closed the connection (it crashed or was killed)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_raw(fd: int) -> bytes:
    """Read one length-prefixed message from ``fd`` and return its bytes.

    Raises:
        ProtocolError: if the pipe closes before the message is complete, or the message is larger
            than :data:`MAX_MESSAGE`.
    """
    (size,) = struct.unpack("!Q", _read_exact(fd, 8))
    if size > MAX_MESSAGE:
        raise ProtocolError(f"reply of {size} bytes is larger than the {MAX_MESSAGE} byte limit")
    return _read_exact(fd, size)


def recv_trusted(fd: int, persistent_load=None):
    """Read one message from ``fd`` and unpickle it with the ordinary unpickler (messages from the checker only).

    Args:
        fd: the pipe to read.
        persistent_load: resolves the pickle's persistent ids (the worker's handles and callbacks), or None.

    Raises:
        ProtocolError: see :func:`recv_raw`; any exception of the unpickler or ``persistent_load``.
    """
    unpickler = pickle.Unpickler(io.BytesIO(recv_raw(fd)))
    if persistent_load is not None:
        unpickler.persistent_load = persistent_load
    return unpickler.load()


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise ProtocolError(f"the student's process sent an object of type {module}.{name}; only data is accepted")

    def persistent_load(self, pid):
        raise ProtocolError("unexpected persistent id from the student's process")


def loads_untrusted(data: bytes):
    """Unpickle a reply from the worker: builtins-only containers, no globals at all.

    Returns:
        The message (``None``, bools, numbers, strings, bytes, lists, tuples, dicts, sets...).

    Raises:
        ProtocolError: if the data names any global or persistent id, or is truncated or malformed.
    """
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except ProtocolError:
        raise
    except Exception as error:  # truncated, malformed...
        raise ProtocolError(f"malformed reply from the student's process ({type(error).__name__})") from None


# ---------------------------------------------------------------- the checker's objects, in the worker
class CheckerProxy:
    """In the worker: stands for a function or test-cell object of the checker (e.g. the ``fn`` a
    check passes to ``is_permutation_equivariant(fn, X)``). Calling it sends the arguments, as data,
    back to the checker, which runs the real thing there and returns the result."""

    __slots__ = ("_cb_key", "_cb_name", "_cb_call")

    def __init__(self, key: int, name: str, call):
        object.__setattr__(self, "_cb_key", key)
        object.__setattr__(self, "_cb_name", name)
        object.__setattr__(self, "_cb_call", call)

    def __call__(self, *args, **kwargs):
        """Call the checker's object with these arguments (sent as data); return its result.

        Raises:
            The exception the checker's object raised (a built-in class of the same name, else
            RuntimeError), TypeError for keyword names that are not strings, or CellTimeout.
        """
        return self._cb_call(self._cb_key, "call", (args, kwargs))

    def __getattr__(self, name):
        """The checker's object's attribute ``name``, as data.

        Raises:
            AttributeError: for a name that starts with ``_`` (never asked); else as :meth:`__call__`.
        """
        if name.startswith("_"):
            raise AttributeError(name)
        return self._cb_call(self._cb_key, "getattr", name)

    def __repr__(self):
        """``<grader's NAME>``."""
        return f"<grader's {self._cb_name}>"

    @property
    def __name__(self):
        """The last part of the checker's object's qualified name."""
        return self._cb_name.rsplit(".", 1)[-1]


# ---------------------------------------------------------------- mutable arguments (both processes)
def _mutable_leaf(value) -> bool:
    if isinstance(value, (np.ndarray, np.random.Generator)):
        return True
    torch = _torch()
    return torch is not None and isinstance(value, (torch.Tensor, torch.Generator))


def mutables(root) -> list:
    """The mutable objects reachable from ``root`` through exact lists, tuples and dict values, in a
    fixed depth-first order, each once (50 levels at most).

    Both processes walk their copy of the same arguments, so index ``k`` names the same argument on
    both sides. Mutable: lists, dicts, NumPy arrays and Generators, torch tensors and Generators.
    """
    out, seen = [], set()

    def walk(value, depth):
        if depth > 50:
            return
        t = type(value)
        if t is list or t is dict or _mutable_leaf(value):
            if id(value) in seen:
                return
            seen.add(id(value))
            out.append(value)
        if t is list or t is tuple:
            for item in value:
                walk(item, depth + 1)
        elif t is dict:
            for item in value.values():
                walk(item, depth + 1)

    walk(root, 0)
    return out


def snapshot(value):
    """Something to tell, after a call, whether ``value`` was changed in place (see :func:`changed`).

    Returns:
        A comparable summary (items of a list or dict, hash of an array, a generator's state, a
        tensor's version), or None when it cannot tell (then the value is always sent back).
    """
    try:
        t = type(value)
        if t is list:
            return ("list", list(value))
        if t is dict:
            return ("dict", list(value.items()))
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return None  # unknown: always mirrored
            return (value.shape, value.dtype.str, hashlib.blake2b(np.ascontiguousarray(value).view(np.uint8).data,
                                                                  digest_size=16).digest())
        if isinstance(value, np.random.Generator):
            return pickle.dumps(value.bit_generator.state)
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return (value._version, tuple(value.shape), value.dtype, value.data_ptr())
        if isinstance(value, torch.Generator):
            return value.get_state().numpy().tobytes()
    except Exception:  # noqa: BLE001 - e.g. an inference tensor: mirror it
        return None
    return None


def changed(value, before) -> bool:
    """True if ``value`` was changed in place since ``before = snapshot(value)``.

    Lists and dicts count as changed when an item was added, removed or replaced by another object
    (not when only an item changed inside); other values when their snapshot differs; a ``None``
    snapshot always counts as changed.
    """
    if before is None:
        return True
    if isinstance(before, tuple) and before and before[0] in ("list", "dict") and type(value) in (list, dict):
        now = list(value) if type(value) is list else list(value.items())
        old = before[1]
        if len(now) != len(old):
            return True
        if type(value) is list:
            return any(a is not b for a, b in zip(now, old))
        return any(k1 is not k2 or v1 is not v2 for (k1, v1), (k2, v2) in zip(now, old))
    return snapshot(value) != before


def copy_into(original, new) -> bool:
    """Make ``original`` hold what ``new`` holds, in place.

    Returns:
        True if done (or ``original is new``); False if the kinds or shapes do not match or
        ``original`` cannot be written (read-only array...), then ``original`` is left as it was.
    """
    try:
        if original is new:
            return True
        t = type(original)
        if t is list and type(new) is list:
            original[:] = new
            return True
        if t is dict and type(new) is dict:
            original.clear()
            original.update(new)
            return True
        if isinstance(original, np.ndarray) and isinstance(new, np.ndarray):
            if new.shape == original.shape and original.flags.writeable:
                np.copyto(original, new, casting="unsafe")
                return True
            return False
        if isinstance(original, np.random.Generator) and isinstance(new, np.random.Generator):
            original.bit_generator.state = new.bit_generator.state
            return True
        torch = _torch()
        if torch is None:
            return False
        if isinstance(original, torch.Tensor) and isinstance(new, torch.Tensor):
            new = new.detach().to(original.dtype)
            with torch.no_grad():
                if new.shape == original.shape:
                    if not torch.equal(original, new):
                        original.copy_(new)
                else:  # resized in place (resize_, set_): take the new size
                    original.data = new.clone()
            return True
        if isinstance(original, torch.Generator) and isinstance(new, torch.Generator):
            original.set_state(new.get_state())
            return True
    except Exception:  # noqa: BLE001 - an argument that cannot be written (read-only, expanded...)
        return False
    return False


def detached_copy(value):
    """A copy of a mutable argument to send by value (its elements still go by reference).

    Returns:
        A shallow copy of a list or dict, a copy of an array, a detached clone of a tensor, else a
        deep copy (generators).
    """
    if type(value) is list:
        return list(value)
    if type(value) is dict:
        return dict(value)
    if isinstance(value, np.ndarray):
        return value.copy()
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().clone()
    return copy.deepcopy(value)


def call_noting_changes(fn, args: tuple, kwargs: dict, time_limit):
    """Call ``fn(*args, **kwargs)`` under a time limit and tell which mutable arguments it changed in place.

    The serving side of a call between the processes (the worker running the student's function,
    the checker running one of its callbacks): the caller then sends back the changed arguments.

    Args:
        fn: the function (or any callable) to run.
        args, kwargs: its arguments, as received (see :func:`mutables`).
        time_limit: called with no argument right before the call; returns the context manager that
            limits it (a :class:`~attention_course.grading.timer.Alarm`).

    Returns:
        ``(value, originals, dirty)``: what ``fn`` returned, the mutable arguments (:func:`mutables`
        of ``(args, kwargs values)``) and, for each, whether the call changed it (:func:`changed`).

    Raises:
        Whatever ``fn`` or the time limit raises.
    """
    originals = mutables((args, tuple(kwargs.values())))
    before = [snapshot(o) for o in originals]
    with time_limit():
        value = fn(*args, **kwargs)
    return value, originals, [changed(o, b) for o, b in zip(originals, before)]


# ---------------------------------------------------------------- flattening (runs in the worker)
_SCALARS = (bool, int, float, str, bytes, type(None))
PLAIN_TYPES = frozenset({bool, int, float, str, bytes, type(None), complex, tuple, list, dict, set, frozenset})


def flatten(value, remember, depth: int = 0, refs: dict | None = None):
    """Turn a student's value into tagged builtins. ``remember(obj)`` returns a handle for objects
    that are not data (functions, class instances); they stay in the worker. ``refs`` maps
    ``id(argument) -> (index, changed)`` for the mutable arguments of the call being answered: an
    argument is sent as ``("same", index)`` or ``("ref", index, new content)``, so the checker
    updates its own object in place and keeps its identity.

    Returns:
        The tree of tagged tuples (see :class:`_Rebuilder` for the tags).

    Raises:
        ValueError: if ``value`` is nested more than 50 levels deep; whatever converting a value raises.
    """
    if depth > 50:
        raise ValueError("value nested more than 50 levels deep")
    if refs is not None and id(value) in refs:
        index, dirty = refs[id(value)]
        if not dirty:
            return ("same", index)
        return ("ref", index, _flatten(value, remember, depth, refs))
    return _flatten(value, remember, depth, refs)


def _flatten(value, remember, depth, refs):
    t = type(value)
    if t in _SCALARS:
        return ("s", value)
    if t is complex:
        return ("c", value.real, value.imag)

    def sub(v):
        return flatten(v, remember, depth + 1, refs)

    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        return _flatten_array(value, sub)
    if t in (list, tuple):
        return ("l" if t is list else "t", [sub(v) for v in value])
    if t is dict:
        return ("d", [(sub(k), sub(v)) for k, v in value.items()])
    if t in (set, frozenset):
        return ("set", [sub(v) for v in value], t is frozenset)
    if t is range:
        return ("range", value.start, value.stop, value.step)
    if t is slice:
        return ("slice", sub(value.start), sub(value.stop), sub(value.step))
    if t is CheckerProxy:
        return ("cb", object.__getattribute__(value, "_cb_key"))
    return _flatten_object(value, remember, sub)


def _flatten_array(value, sub):
    """A NumPy array or scalar: raw bytes (``"nd"``), an ``.npy`` file (``"a"``, structured dtypes)
    or, for an object array, its flattened items (``"oa"``)."""
    array = np.array(value, copy=True, subok=False)
    if array.dtype.hasobject:
        return ("oa", array.shape, [sub(v) for v in array.ravel().tolist()], isinstance(value, np.generic))
    if array.dtype.fields is None and array.dtype.subdtype is None:  # the common case, fast
        return ("nd", array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes(),
                isinstance(value, np.generic))
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return ("a", buffer.getvalue(), isinstance(value, np.generic))


def _flatten_object(value, remember, sub):
    """A torch tensor or generator, a NumPy generator (by their state), else a handle (``"r"``)."""
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        dtype = str(tensor.dtype).replace("torch.", "")
        if dtype == "bfloat16":
            tensor, dtype = tensor.float(), "bfloat16"
        return ("tensor", flatten(tensor.resolve_conj().resolve_neg().numpy(), remember), dtype,
                bool(value.requires_grad))
    if torch is not None and isinstance(value, torch.Generator):
        return ("tgen", flatten(value.get_state().numpy(), remember))
    if isinstance(value, np.random.Generator):
        return ("rng", sub(value.bit_generator.state))
    return ("r", remember(value), type(value).__name__, callable(value))


# ---------------------------------------------------------------- rebuilding (runs in the checker)
def unflatten(node, make_remote, originals=(), checker_object=None):
    """Rebuild a value from :func:`flatten`'s tree (untrusted data from the worker).

    Args:
        node: the tree.
        make_remote: ``make_remote(handle, type name, is callable)``: the proxy of a student's object.
        originals: the checker's mutable arguments of the call (see :func:`mutables`); ``"same"``
            and ``"ref"`` nodes name them (a ``"ref"`` is copied into its original, in place).
        checker_object: ``checker_object(key)``: the checker's object behind a :class:`CheckerProxy`
            key, or None if the value may not name any.

    Returns:
        The value: builtins, NumPy arrays and generators, torch tensors and generators, proxies.

    Raises:
        ProtocolError: for a malformed tree (or a node it does not expect); also IndexError,
            ValueError, TypeError... from a node with missing or wrong parts.
    """
    return _Rebuilder(make_remote, originals, checker_object).build(node)


class _Rebuilder:
    """:func:`unflatten`'s walk: :meth:`build` hands each node to the method of its tag (``_TAGS``)."""

    def __init__(self, make_remote, originals, checker_object):
        self.make_remote, self.originals, self.checker_object = make_remote, originals, checker_object

    def build(self, node):
        """The value of one node (see :func:`unflatten`)."""
        if not isinstance(node, tuple) or not node or not isinstance(node[0], str):
            raise ProtocolError("malformed value from the student's process")
        tag = node[0]
        method = self._TAGS.get(tag)
        if method is None:
            raise ProtocolError(f"unknown value tag {tag!r} from the student's process")
        return method(self, node)

    def original(self, index):
        """The checker's mutable argument number ``index`` of the call."""
        if type(index) is not int or not 0 <= index < len(self.originals):
            raise ProtocolError("reference to an argument that was not passed")
        return self.originals[index]

    # ---- scalars and arrays
    def scalar(self, node):
        """``("s", value)``: None, a bool, int, float, str or bytes."""
        value = node[1]
        if type(value) not in _SCALARS:
            raise ProtocolError("malformed scalar")
        return value

    def complex_number(self, node):
        """``("c", real, imag)``: a complex number."""
        return complex(float(node[1]), float(node[2]))

    def raw_array(self, node):
        """``("nd", dtype, shape, bytes, is scalar)``: a plain NumPy array (or scalar), checked against its bytes."""
        _, descr, shape, data, scalar = node
        if type(descr) is not str or type(data) is not bytes or type(shape) is not tuple or \
                not all(type(n) is int and n >= 0 for n in shape):
            raise ProtocolError("malformed array")
        try:
            dtype = np.dtype(descr)
        except (TypeError, ValueError):
            raise ProtocolError("malformed array dtype") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or \
                len(data) != math.prod(shape) * dtype.itemsize:
            raise ProtocolError("malformed array")
        array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return array[()] if scalar else array

    def npy_array(self, node):
        """``("a", .npy bytes, is scalar)``: a NumPy array of another dtype, read without pickles."""
        array = np.load(io.BytesIO(node[1]), allow_pickle=False)
        return array[()] if node[2] else array

    def object_array(self, node):
        """``("oa", shape, items, is scalar)``: a NumPy object array, item by item."""
        items = [self.build(v) for v in node[2]]
        array = np.empty(len(items), dtype=object)
        array[:] = items
        array = array.reshape(tuple(int(s) for s in node[1]))
        return array[()] if node[3] else array

    # ---- containers
    def list_(self, node):
        """``("l", items)``: a list."""
        return [self.build(v) for v in node[1]]

    def tuple_(self, node):
        """``("t", items)``: a tuple."""
        return tuple(self.build(v) for v in node[1])

    def dict_(self, node):
        """``("d", [(key, value)...])``: a dict."""
        return {self.build(k): self.build(v) for k, v in node[1]}

    def set_(self, node):
        """``("set", items, is frozen)``: a set or frozenset."""
        items = [self.build(v) for v in node[1]]
        return frozenset(items) if node[2] else set(items)

    def range_(self, node):
        """``("range", start, stop, step)``: a range."""
        return range(int(node[1]), int(node[2]), int(node[3]))

    def slice_(self, node):
        """``("slice", start, stop, step)``: a slice."""
        return slice(self.build(node[1]), self.build(node[2]), self.build(node[3]))

    # ---- torch and random generators
    def tensor(self, node):
        """``("tensor", array node, dtype, requires grad)``: a CPU torch tensor."""
        import torch

        array = self.build(node[1])
        if not isinstance(array, np.ndarray) or array.dtype.hasobject:
            raise ProtocolError("malformed tensor")
        tensor = torch.from_numpy(np.array(array))
        dtype = getattr(torch, str(node[2]), None)
        if isinstance(dtype, torch.dtype):
            tensor = tensor.to(dtype)
        if node[3] and tensor.is_floating_point():
            tensor.requires_grad_(True)
        return tensor

    def torch_generator(self, node):
        """``("tgen", state array node)``: a torch.Generator in that state."""
        import torch

        state = self.build(node[1])
        if not isinstance(state, np.ndarray) or state.dtype != np.uint8 or state.ndim != 1:
            raise ProtocolError("malformed torch.Generator state")
        generator = torch.Generator()
        try:
            generator.set_state(torch.from_numpy(state.copy()))
        except (RuntimeError, ValueError, TypeError):
            raise ProtocolError("malformed torch.Generator state") from None
        return generator

    def numpy_generator(self, node):
        """``("rng", state node)``: a NumPy Generator of one of :data:`BIT_GENERATORS`, in that state."""
        state = self.build(node[1])
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in BIT_GENERATORS:
            raise ProtocolError("malformed numpy Generator state")
        bit_generator = getattr(np.random, name)()
        try:
            bit_generator.state = state
        except (ValueError, TypeError, KeyError):
            raise ProtocolError("malformed numpy Generator state") from None
        return np.random.Generator(bit_generator)

    # ---- references: the call's arguments, the checker's objects, the student's objects
    def same(self, node):
        """``("same", index)``: the call's argument ``index``, unchanged."""
        return self.original(node[1])

    def ref(self, node):
        """``("ref", index, new value)``: the call's argument ``index``, updated in place (the new value if it cannot be)."""
        target = self.original(node[1])
        new = self.build(node[2])
        return target if copy_into(target, new) else new

    def checker_callback(self, node):
        """``("cb", key)``: the checker's own object behind a :class:`CheckerProxy`."""
        if self.checker_object is None:
            raise ProtocolError("unexpected reference to a grader object")
        return self.checker_object(node[1])

    def remote(self, node):
        """``("r", handle, type name, is callable)``: a proxy of an object that stays in the worker."""
        return self.make_remote(int(node[1]), str(node[2]), bool(node[3]))

    _TAGS = {"s": scalar, "c": complex_number, "nd": raw_array, "a": npy_array, "oa": object_array,
             "l": list_, "t": tuple_, "d": dict_, "set": set_, "range": range_, "slice": slice_,
             "tensor": tensor, "tgen": torch_generator, "rng": numpy_generator, "same": same, "ref": ref,
             "cb": checker_callback, "r": remote}
