"""Python mods traced into flexjit's text language.

A mask_mod ``(b, h, q_idx, kv_idx) -> bool`` or a score_mod ``(score, b, h, q_idx, kv_idx) ->
float`` is called once with symbolic values (`TracedValue`); the operators it applies build an
expression DAG, printed as the canonical text (`_text.py`) that the library parses.

Semantics follow torch's on the int32 index tensors FlexAttention passes:

- ints are int32 (constants must fit), floats float32 (Python floats round to float32);
- ``+ - *`` keep int for two ints, else float (an int operand is converted: ``float(x)``);
- ``/`` is true division, always float; ``//`` floor division and ``%`` the remainder with the
  divisor's sign, on ints only;
- comparisons of an int and a float compare as floats;
- ``&``, ``|``, ``~``, ``^`` on bools are logical and, or, not, xor; ``&`` and ``|`` on ints are
  bitwise, ``~`` on an int is ``-x - 1``;
- ``and``, ``or``, ``not``, ``if`` and chained comparisons need a Python truth value, which a
  traced value has not: a TypeError says to use ``& | ~`` and `where`.

Functions: `where`, `minimum`, `maximum`, `clamp`, `exp`, `exp2`, `log`, `log2`, `sqrt`,
`rsqrt`, `tanh`, `tanh_approx`, `sin`, `cos`, `sigmoid`, ``abs()``, ``**`` by a small int; the
same torch functions (torch.where, torch.exp, ...) work on traced values through
``__torch_function__``, and so do methods (``x.abs()``, ``x.float()``).

Captured tensors indexed by traced values become buffers, named buf0, buf1, ... in order of
first use and declared in the text (``buf0:i32:1[q_idx]``); they are bound by name, without
a copy, when the mod runs. Torch tensors are indexed directly (``bias[h, q_idx - kv_idx]``);
numpy arrays and other DLPack objects through `buffer(array)`. A buffer of int64 (or int16,
int8, uint8) or float64 is converted once, at trace time, to int32 or float32. A 0-d torch
tensor or a Python number captured is a constant. `Param` is a named scalar bound at call
time (changing it does not recompile).
"""

import math
import numbers

from . import _tensors
from ._text import INT32_MAX, INT32_MIN, Graph, dtype_value_type, to_f32, to_text

__all__ = ["TracedValue", "TracedMod", "Param", "buffer", "trace_mask_mod", "trace_score_mod",
           "where", "minimum", "maximum", "clamp", "exp", "exp2", "log", "log2", "sqrt", "rsqrt",
           "tanh", "tanh_approx", "sin", "cos", "sigmoid", "and_masks", "or_masks", "noop_mask"]

_NO_TRUTH = (
    "a traced value has no Python truth value: `and`, `or`, `not`, `if`, chained comparisons "
    "(a < b < c) and Python's min()/max() need one, but a mod's values are symbolic. Use "
    "& (and), | (or), ~ (not) on bools, flexjit.where(cond, a, b) or torch.where for a choice, "
    "and flexjit.minimum/maximum or torch.minimum/maximum")


class _Trace:
    """One tracing: the node graph and the buffers and params it captured."""

    def __init__(self, inherited=()):
        self.graph = Graph()
        self.buffers = []  # BufferRef, in order of first use
        self._buffer_by_id = {}
        self.params = {}  # name -> Param
        # Another mod's buffers (the block mask's, for a score_mod run beside it): the same
        # captured object keeps its name, new ones are numbered after them.
        self._inherited = {id(ref.source): ref for ref in inherited}
        self._next = len(inherited)

    def buffer_for(self, obj):
        ref = self._buffer_by_id.get(id(obj))
        if ref is not None:
            return ref
        ref = self._inherited.get(id(obj))
        if ref is not None:
            self.buffers.append(ref)
            self._buffer_by_id[id(obj)] = ref
            return ref
        info = _tensors.describe(obj)
        if info is None:
            raise TypeError("a %s cannot be captured as a buffer; flexjit takes torch tensors, "
                            "numpy arrays or DLPack objects" % type(obj).__name__)
        target = obj
        if info.dtype is None:
            target = _tensors.converted(obj, info)
            if target is None:
                raise TypeError("a captured tensor has dtype %s; flexjit's buffers are int32, "
                                "float32, float16, bfloat16 or bool (int64, int16, int8, uint8 "
                                "and float64 are converted)" % info.source_dtype)
            info = _tensors.describe(target)
        if not 1 <= info.rank <= 4:
            raise ValueError("a captured tensor indexed in a mod must have rank 1 to 4, this one "
                             "has shape %s" % (info.shape,))
        ref = BufferRef("buf%d" % self._next, target, info.dtype, info.rank, obj)
        self._next += 1
        self.buffers.append(ref)
        self._buffer_by_id[id(obj)] = ref
        return ref


class BufferRef:
    """A captured tensor: its name in the text, the object bound (after any dtype conversion),
    dtype and rank, and the object the mod captured."""

    def __init__(self, name, obj, dtype, rank, source):
        self.name = name
        self.obj = obj
        self.dtype = dtype
        self.rank = rank
        self.source = source

    def __repr__(self):
        return "BufferRef(%s:%s:%d)" % (self.name, self.dtype, self.rank)


_current = []  # the active traces (a stack: tracing inside tracing is allowed)


def _trace():
    if not _current:
        raise RuntimeError("no mod is being traced")
    return _current[-1]


class Param:
    """A named int or float scalar that a mod reads and that is bound at call time: changing
    `value` does not recompile. ``window = flexjit.Param("window", 256)`` then
    ``q_idx - kv_idx <= window`` in the mod; the type is the value's (int -> int32, float ->
    float32) unless `type` ("int" or "float") says."""

    def __init__(self, name, value, type=None):
        if not isinstance(name, str) or not name or not all(c.isalnum() or c == "_"
                                                                for c in name):
            raise ValueError("a param name is letters, digits and '_', got %r" % (name,))
        if type is None:
            type = "float" if isinstance(value, float) else "int"
        if type not in ("int", "float"):
            raise ValueError("a param's type is 'int' or 'float', got %r" % (type,))
        self.name = name
        self.type = type
        self.value = value

    def _node(self):
        t = _trace()
        known = t.params.get(self.name)
        if known is not None and known is not self:
            raise ValueError("two different params are named %r in one mod" % self.name)
        t.params[self.name] = self
        return t.graph.make("param", self.type, (), (self.name, self.type))

    # A Param behaves as its traced value in expressions.
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(TracedValue(self._node()), name)

    def __repr__(self):
        return "Param(%r, %r, %r)" % (self.name, self.value, self.type)


def _param_op(name):
    def op(self, *args):
        return getattr(TracedValue(self._node()), name)(*args)
    op.__name__ = name
    return op


class _Buffer:
    """buffer(obj): an indexable wrapper of a tensor-like object (numpy array, DLPack object,
    torch tensor) for mods: ``doc = flexjit.buffer(array)`` then ``doc[q_idx]``."""

    def __init__(self, obj):
        self.obj = obj

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        if not any(isinstance(i, (TracedValue, Param)) for i in items):
            return self.obj[index]  # outside tracing (or constant indices): the element
        return _load(self.obj, index)

    def __repr__(self):
        return "flexjit.buffer(%r)" % (self.obj,)


def buffer(obj):
    """Wraps a captured tensor (numpy array, DLPack object, torch tensor) so that indexing it
    with traced values loads from it in the mod. Torch tensors need no wrapper."""
    return _Buffer(obj)


# ---- operands ---------------------------------------------------------------------------------


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _node_of(x):
    """A TracedValue's / Param's node, or None for a constant."""
    if isinstance(x, TracedValue):
        return x._node
    if isinstance(x, Param):
        return x._node()
    return None


def _constant(x):
    """A Python value as a constant operand: ('int' | 'float' | 'bool', value); 0-d torch
    tensors and numpy scalars count as their value."""
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, numbers.Integral):
        return ("int", int(x))
    if isinstance(x, numbers.Real):
        return ("float", float(x))
    if _tensors.is_torch_tensor(x) and x.dim() == 0:
        v = x.item()
        return _constant(v)
    if hasattr(x, "dtype") and hasattr(x, "item") and getattr(x, "shape", None) == ():
        return _constant(x.item())
    if _tensors.is_torch_tensor(x):
        raise TypeError("a captured tensor of shape %s is used without indexing it by traced "
                        "values (b, h, q_idx, kv_idx); index it, e.g. bias[h, q_idx]"
                        % (tuple(x.shape),))
    raise TypeError("a %s cannot be used in a traced mod (use ints, floats, bools, traced values "
                    "and captured tensors indexed by them)" % type(x).__name__)


class _Operand:
    """A node or a not-yet-typed constant, for promotion."""

    __slots__ = ("node", "ctype", "value")

    def __init__(self, x):
        self.node = _node_of(x)
        if self.node is None:
            self.ctype, self.value = _constant(x)
        else:
            self.ctype, self.value = None, None

    @property
    def type(self):
        return self.node.type if self.node is not None else self.ctype

    def as_type(self, type_):
        """The node of this operand as `type_` (a cast or a converted constant)."""
        g = _trace().graph
        if self.node is not None:
            if self.node.type == type_:
                return self.node
            return g.make("cast", type_, (self.node,))
        v = self.value
        if type_ == "float":
            return g.make("float", "float", (), to_f32(float(v)))
        if type_ == "int":
            v = int(v)
            if not INT32_MIN <= v <= INT32_MAX:
                raise OverflowError("the int constant %d is outside int32, the type of flexjit's "
                                    "ints" % v)
            return g.make("int", "int", (), v)
        return g.make("bool", "bool", (), bool(v))


def _numeric_type(*ops):
    """The result type of numbers combined (torch's promotion): float if any is, else int; a bool
    counts as an int."""
    return "float" if any(op.type == "float" for op in ops) else "int"


def _wrap(node):
    return TracedValue(node)


def _make(kind, type_, operands):
    return _wrap(_trace().graph.make(kind, type_, operands))


def _arith(kind, a, b):
    x, y = _Operand(a), _Operand(b)
    t = _numeric_type(x, y)
    if kind == "/":
        t = "float"
        if y.node is None and y.value == 0:
            raise ZeroDivisionError("a traced mod divides by the constant 0")
    return _make(kind, t, (x.as_type(t), y.as_type(t)))


def _int_op(kind, a, b, symbol):
    x, y = _Operand(a), _Operand(b)
    if x.type == "float" or y.type == "float":
        raise TypeError("'%s' takes ints in a traced mod (flexjit's language has no float %s); "
                        "got %s and %s" % (symbol, symbol, x.type, y.type))
    if kind in ("//", "%") and y.node is None and y.value == 0:
        raise ZeroDivisionError("a traced mod divides by the constant 0 ('%s')" % symbol)
    return _make(kind, "int", (x.as_type("int"), y.as_type("int")))


def _compare(kind, a, b):
    """< and <= (> and >= come here with the operands swapped, as the language writes them)."""
    x, y = _Operand(a), _Operand(b)
    t = _numeric_type(x, y)
    return _make(kind, "bool", (x.as_type(t), y.as_type(t)))


def _equality(kind, a, b):
    x, y = _Operand(a), _Operand(b)
    t = "bool" if x.type == "bool" and y.type == "bool" else _numeric_type(x, y)
    return _make(kind, "bool", (x.as_type(t), y.as_type(t)))


def _logic(kind, a, b):
    """& or | (kind '&&' / '||' on bools, '&' / '|' on ints)."""
    x, y = _Operand(a), _Operand(b)
    if x.type == "float" or y.type == "float":
        raise TypeError("'%s' takes bools or ints in a traced mod, got %s and %s"
                        % (kind[0], x.type, y.type))
    if x.type == "bool" and y.type == "bool":
        # A constant operand decides or drops out (torch's and_masks starts from True).
        for c, other in ((x, y), (y, x)):
            if c.node is None:
                if kind == "&&":
                    return _wrap(other.as_type("bool")) if c.value else False
                return True if c.value else _wrap(other.as_type("bool"))
        return _make(kind, "bool", (x.node, y.node))
    k = "&" if kind == "&&" else "|"
    return _make(k, "int", (x.as_type("int"), y.as_type("int")))


def _unary_float(kind, a):
    x = _Operand(a)
    if x.node is None:
        return _fold_float(kind, to_f32(float(x.value)))
    return _make(kind, "float", (x.as_type("float"),))


def _fold_float(kind, v):
    """A float function of a constant, with IEEE results where Python's math raises (log(0) =
    -inf, sqrt(-1) = nan, exp(1000) = inf), rounded to float32."""
    fns = {"exp": math.exp, "exp2": lambda u: 2.0 ** u, "log": math.log, "log2": math.log2,
           "sqrt": math.sqrt, "rsqrt": lambda u: 1.0 / math.sqrt(u), "tanh": math.tanh,
           "tanh_approx": math.tanh, "sin": math.sin, "cos": math.cos}
    try:
        return to_f32(fns[kind](v))
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError):
        if math.isnan(v):
            return v
        if kind in ("log", "log2"):
            return -math.inf if v == 0 else math.nan
        if kind == "rsqrt" and v == 0:
            return math.copysign(math.inf, v)
        return math.nan


# ---- the traced value -------------------------------------------------------------------------


class TracedValue:
    """A symbolic value of a mod being traced (b, h, q_idx, kv_idx, score, and what operators and
    functions make of them)."""

    __slots__ = ("_node",)
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators
    __hash__ = object.__hash__

    def __init__(self, node):
        self._node = node

    @property
    def dtype(self):
        return self._node.type

    @property
    def device(self):
        return None

    @property
    def shape(self):
        return ()

    def dim(self):
        return 0

    def __repr__(self):
        return "TracedValue(%s: %s)" % (to_text(self._node), self._node.type)

    def __bool__(self):
        raise TypeError(_NO_TRUTH)

    def __float__(self):
        raise TypeError("a traced value has no Python float value (math.* functions cannot take "
                        "it); use flexjit.exp/log/... or torch.exp/log/...")

    def __int__(self):
        raise TypeError("a traced value has no Python int value; a captured tensor indexed by "
                        "it must be a torch tensor or flexjit.buffer(array)")

    # arithmetic
    def __add__(self, o):
        return _arith("+", self, o)

    def __radd__(self, o):
        return _arith("+", o, self)

    def __sub__(self, o):
        return _arith("-", self, o)

    def __rsub__(self, o):
        return _arith("-", o, self)

    def __mul__(self, o):
        return _arith("*", self, o)

    def __rmul__(self, o):
        return _arith("*", o, self)

    def __truediv__(self, o):
        return _arith("/", self, o)

    def __rtruediv__(self, o):
        return _arith("/", o, self)

    def __floordiv__(self, o):
        return _int_op("//", self, o, "//")

    def __rfloordiv__(self, o):
        return _int_op("//", o, self, "//")

    def __mod__(self, o):
        return _int_op("%", self, o, "%")

    def __rmod__(self, o):
        return _int_op("%", o, self, "%")

    def __pow__(self, o):
        return _power(self, o)

    def __neg__(self):
        if self._node.type == "bool":
            raise TypeError("unary '-' of a bool; use ~ for logical not")
        return _make("neg", self._node.type, (self._node,))

    def __pos__(self):
        return self

    def __abs__(self):
        return abs_(self)

    # comparisons: a > b is b < a, a >= b is b <= a (the language's spelling)
    def __lt__(self, o):
        return _compare("<", self, o)

    def __le__(self, o):
        return _compare("<=", self, o)

    def __gt__(self, o):
        return _compare("<", o, self)

    def __ge__(self, o):
        return _compare("<=", o, self)

    def __eq__(self, o):
        return _equality("==", self, o)

    def __ne__(self, o):
        return _equality("!=", self, o)

    # logic
    def __and__(self, o):
        return _logic("&&", self, o)

    def __rand__(self, o):
        return _logic("&&", o, self)

    def __or__(self, o):
        return _logic("||", self, o)

    def __ror__(self, o):
        return _logic("||", o, self)

    def __xor__(self, o):
        return _xor(self, o)

    def __rxor__(self, o):
        return _xor(o, self)

    def __invert__(self):
        return logical_not(self)

    # tensor-like methods
    def abs(self):
        return abs_(self)

    def exp(self):
        return exp(self)

    def exp2(self):
        return exp2(self)

    def log(self):
        return log(self)

    def log2(self):
        return log2(self)

    def sqrt(self):
        return sqrt(self)

    def rsqrt(self):
        return rsqrt(self)

    def tanh(self):
        return tanh(self)

    def sin(self):
        return sin(self)

    def cos(self):
        return cos(self)

    def sigmoid(self):
        return sigmoid(self)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    clip = clamp

    def minimum(self, o):
        return minimum(self, o)

    def maximum(self, o):
        return maximum(self, o)

    def where(self, condition, other):  # torch's x.where(cond, y)
        return where(condition, self, other)

    def logical_and(self, o):
        return _logic("&&", _as_bool(self), _as_bool(o))

    def logical_or(self, o):
        return _logic("||", _as_bool(self), _as_bool(o))

    def logical_not(self):
        return logical_not(_as_bool(self))

    def float(self):
        return _cast(self, "float")

    def int(self):
        return _cast(self, "int")

    def long(self):
        return _cast(self, "int")

    def bool(self):
        return _cast(self, "bool")

    def to(self, *args, **kwargs):
        dtype = kwargs.get("dtype")
        for a in args:
            if "dtype" in type(a).__name__ or str(a).startswith("torch."):
                dtype = a
        if dtype is None:
            return self
        return _cast(self, _torch_dtype_type(dtype))

    def new_ones(self, *args, **kwargs):  # torch's and_masks / noop_mask start from these
        dtype = kwargs.get("dtype")
        return True if dtype is not None and "bool" in str(dtype) else 1

    def new_zeros(self, *args, **kwargs):
        dtype = kwargs.get("dtype")
        return False if dtype is not None and "bool" in str(dtype) else 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return _torch_function(func, args, kwargs or {})


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
              "__neg__", "__abs__", "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__",
              "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__invert__"):
    setattr(Param, _name, _param_op(_name))
Param.__hash__ = object.__hash__
Param.__bool__ = lambda self: TracedValue.__bool__(None)


def _as_bool(x):
    op = _Operand(x)
    if op.type == "bool":
        return x
    return _cast(x, "bool")


def _cast(x, type_):
    op = _Operand(x)
    if op.node is None:
        return {"int": int, "float": lambda v: to_f32(float(v)), "bool": bool}[type_](op.value)
    if op.node.type == type_:
        return x if isinstance(x, TracedValue) else _wrap(op.node)
    return _make("cast", type_, (op.node,))


def _torch_dtype_type(dtype):
    name = str(dtype)
    if "bool" in name:
        return "bool"
    if "float" in name or "half" in name or "double" in name:
        return "float"
    if "int" in name or "long" in name or "short" in name:
        return "int"
    raise TypeError("cannot convert a traced value to %s" % name)


def _xor(a, b):
    x, y = _Operand(a), _Operand(b)
    if x.type != "bool" or y.type != "bool":
        raise TypeError("'^' takes bools in a traced mod (logical xor), got %s and %s"
                        % (x.type, y.type))
    return _equality("!=", a, b)


def _power(a, p):
    if isinstance(p, bool) or not _is_number(p):
        raise TypeError("'**' in a traced mod takes a constant exponent (a small int, 0.5 or "
                        "-0.5), got %s" % type(p).__name__)
    x = _Operand(a)
    if p == 0.5:
        return sqrt(a)
    if p == -0.5:
        return rsqrt(a)
    if float(p).is_integer() and 1 <= p <= 16:
        p = int(p)
        result = a
        for _ in range(p - 1):
            result = _arith("*", result, a)
        if x.type == "bool":
            raise TypeError("'**' of a bool")
        return result
    raise TypeError("'**' in a traced mod takes a constant exponent 1 to 16, 0.5 or -0.5, got %r"
                    % (p,))


def _load(obj, index):
    t = _trace()
    if not isinstance(index, tuple):
        index = (index,)
    for i in index:
        if isinstance(i, (slice, type(Ellipsis))) or i is None:
            raise TypeError("a captured tensor in a mod is indexed by one int expression per "
                            "dimension (no slices, ... or None)")
    ref = t.buffer_for(obj)
    if len(index) != ref.rank:
        raise IndexError("a captured tensor of rank %d is indexed with %d indices in a mod; "
                         "flexjit loads one element: give one index per dimension"
                         % (ref.rank, len(index)))
    ops = []
    for i in index:
        op = _Operand(i)
        if op.type != "int":
            raise TypeError("a captured tensor is indexed with a %s in a mod; indices are ints"
                            % op.type)
        ops.append(op.as_type("int"))
    return _wrap(t.graph.make("load", dtype_value_type(ref.dtype), ops,
                              (ref.name, ref.dtype, ref.rank)))


# ---- functions --------------------------------------------------------------------------------


def where(condition, x, y):
    """condition ? x : y (torch.where): a bool condition; two numbers (int and float give float)
    or two bools."""
    c = _Operand(condition)
    if c.type != "bool":
        raise TypeError("where() needs a bool condition, got %s" % c.type)
    if c.node is None:
        return x if c.value else y
    a, b = _Operand(x), _Operand(y)
    if a.type == "bool" and b.type == "bool":
        t = "bool"
    elif "bool" in (a.type, b.type):
        raise TypeError("where() needs two branches of one type (or two numbers), got %s and %s"
                        % (a.type, b.type))
    else:
        t = _numeric_type(a, b)
    return _make("where", t, (c.node, a.as_type(t), b.as_type(t)))


def _minmax(kind, a, b):
    x, y = _Operand(a), _Operand(b)
    if x.node is None and y.node is None:
        return (min if kind == "min" else max)(x.value, y.value)
    if "bool" in (x.type, y.type):
        raise TypeError("%s() takes numbers, got %s and %s" % (kind, x.type, y.type))
    t = _numeric_type(x, y)
    return _make(kind, t, (x.as_type(t), y.as_type(t)))


def minimum(a, b):
    """The smaller of two numbers (torch.minimum)."""
    return _minmax("min", a, b)


def maximum(a, b):
    """The larger of two numbers (torch.maximum)."""
    return _minmax("max", a, b)


def clamp(x, min=None, max=None):
    """min(max(x, min), max), either bound optional (torch.clamp)."""
    ops = [_Operand(v) for v in (x, min, max) if v is not None]
    if len(ops) == 1:
        return x
    t = _numeric_type(*ops)
    if t == "float":  # as the text's clamp(): all float when one is
        x = _cast(x, "float")
        min = None if min is None else _cast(min, "float")
        max = None if max is None else _cast(max, "float")
    result = x
    if min is not None:
        result = maximum(result, min)
    if max is not None:
        result = minimum(result, max)
    return result


def abs_(x):
    """|x| (abs() and torch.abs)."""
    op = _Operand(x)
    if op.node is None:
        return abs(op.value)
    if op.type == "bool":
        raise TypeError("abs() of a bool")
    return _make("abs", op.type, (op.node,))


def logical_not(x):
    """~x: logical not of a bool, -x - 1 of an int."""
    op = _Operand(x)
    if op.node is None:
        return (not op.value) if op.type == "bool" else ~op.value
    if op.type == "bool":
        return _make("not", "bool", (op.node,))
    if op.type == "int":
        return _arith("-", -_wrap(op.node), 1)
    raise TypeError("'~' takes a bool (logical not) or an int, got float")


def exp(x):
    return _unary_float("exp", x)


def exp2(x):
    return _unary_float("exp2", x)


def log(x):
    return _unary_float("log", x)


def log2(x):
    return _unary_float("log2", x)


def sqrt(x):
    return _unary_float("sqrt", x)


def rsqrt(x):
    return _unary_float("rsqrt", x)


def tanh(x):
    return _unary_float("tanh", x)


def tanh_approx(x):
    """tanh through the GPU's tanh.approx.f32 instruction (faster, ~2^-11 relative error)."""
    return _unary_float("tanh_approx", x)


def sin(x):
    return _unary_float("sin", x)


def cos(x):
    return _unary_float("cos", x)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    if _node_of(x) is None:
        return 1.0 / (1.0 + math.exp(-float(x)))
    return 1.0 / (1.0 + exp(-_cast(x, "float")))


def and_masks(*mask_mods):
    """A mask_mod true where every one of `mask_mods` is (torch's and_masks)."""
    def mask(b, h, q_idx, kv_idx):
        result = True
        for m in mask_mods:
            result = result & m(b, h, q_idx, kv_idx)
        return result
    return mask


def or_masks(*mask_mods):
    """A mask_mod true where any of `mask_mods` is (torch's or_masks)."""
    def mask(b, h, q_idx, kv_idx):
        result = False
        for m in mask_mods:
            result = result | m(b, h, q_idx, kv_idx)
        return result
    return mask


def noop_mask(b, h, q_idx, kv_idx):
    """Every pair attends."""
    return True


# ---- torch functions on traced values ---------------------------------------------------------


def _swap(fn):
    return lambda a, b, *rest, **kw: fn(b, a, *rest, **kw)


def _div(a, b, rounding_mode=None):
    if rounding_mode is None:
        return _arith("/", a, b)
    if rounding_mode == "floor":
        return _int_op("//", a, b, "//")
    raise TypeError("torch.div(rounding_mode=%r) is not in flexjit's language (use None or "
                    "'floor')" % (rounding_mode,))


def _clamp_kw(x, min=None, max=None):
    return clamp(x, min, max)


def _torch_minmax(kind):
    def fn(a, b=None, *rest, **kw):
        if b is None or rest or kw:
            raise TypeError("torch.%s of a traced value takes two operands (torch.%s(a, b)); a "
                            "reduction has nothing to reduce in a mod" % (kind, kind))
        return _minmax(kind, a, b)
    return fn


def _neg(a):
    node = _node_of(a)
    return -_constant(a)[1] if node is None else -_wrap(node)


def _getitem(obj, index):
    return _load(obj, index)


_TORCH_OPS = {
    "add": lambda a, b, alpha=1: _arith("+", a, b if alpha == 1 else b * alpha),
    "__add__": lambda a, b: _arith("+", a, b),
    "__radd__": _swap(lambda a, b: _arith("+", a, b)),
    "sub": lambda a, b, alpha=1: _arith("-", a, b if alpha == 1 else b * alpha),
    "subtract": lambda a, b, alpha=1: _arith("-", a, b if alpha == 1 else b * alpha),
    "__sub__": lambda a, b: _arith("-", a, b),
    "__rsub__": _swap(lambda a, b: _arith("-", a, b)),
    "rsub": _swap(lambda a, b: _arith("-", a, b)),
    "mul": lambda a, b: _arith("*", a, b),
    "multiply": lambda a, b: _arith("*", a, b),
    "__mul__": lambda a, b: _arith("*", a, b),
    "__rmul__": _swap(lambda a, b: _arith("*", a, b)),
    "div": _div,
    "divide": _div,
    "true_divide": lambda a, b: _arith("/", a, b),
    "__truediv__": lambda a, b: _arith("/", a, b),
    "__rtruediv__": _swap(lambda a, b: _arith("/", a, b)),
    "__div__": lambda a, b: _arith("/", a, b),
    "floor_divide": lambda a, b: _int_op("//", a, b, "//"),
    "__floordiv__": lambda a, b: _int_op("//", a, b, "//"),
    "__rfloordiv__": _swap(lambda a, b: _int_op("//", a, b, "//")),
    "remainder": lambda a, b: _int_op("%", a, b, "%"),
    "__mod__": lambda a, b: _int_op("%", a, b, "%"),
    "__rmod__": _swap(lambda a, b: _int_op("%", a, b, "%")),
    "pow": _power,
    "__pow__": _power,
    "square": lambda a: _arith("*", a, a),
    "neg": _neg,
    "negative": _neg,
    "__neg__": _neg,
    "abs": abs_,
    "absolute": abs_,
    "__abs__": abs_,
    "eq": lambda a, b: _equality("==", a, b),
    "__eq__": lambda a, b: _equality("==", a, b),
    "ne": lambda a, b: _equality("!=", a, b),
    "not_equal": lambda a, b: _equality("!=", a, b),
    "__ne__": lambda a, b: _equality("!=", a, b),
    "lt": lambda a, b: _compare("<", a, b),
    "less": lambda a, b: _compare("<", a, b),
    "__lt__": lambda a, b: _compare("<", a, b),
    "le": lambda a, b: _compare("<=", a, b),
    "less_equal": lambda a, b: _compare("<=", a, b),
    "__le__": lambda a, b: _compare("<=", a, b),
    "gt": lambda a, b: _compare("<", b, a),
    "greater": lambda a, b: _compare("<", b, a),
    "__gt__": lambda a, b: _compare("<", b, a),
    "ge": lambda a, b: _compare("<=", b, a),
    "greater_equal": lambda a, b: _compare("<=", b, a),
    "__ge__": lambda a, b: _compare("<=", b, a),
    "logical_and": lambda a, b: _logic("&&", _as_bool(a), _as_bool(b)),
    "logical_or": lambda a, b: _logic("||", _as_bool(a), _as_bool(b)),
    "logical_xor": lambda a, b: _xor(_as_bool(a), _as_bool(b)),
    "logical_not": lambda a: logical_not(_as_bool(a)),
    "bitwise_and": lambda a, b: _logic("&&", a, b),
    "__and__": lambda a, b: _logic("&&", a, b),
    "__rand__": _swap(lambda a, b: _logic("&&", a, b)),
    "bitwise_or": lambda a, b: _logic("||", a, b),
    "__or__": lambda a, b: _logic("||", a, b),
    "__ror__": _swap(lambda a, b: _logic("||", a, b)),
    "bitwise_xor": _xor,
    "__xor__": _xor,
    "__rxor__": _swap(_xor),
    "bitwise_not": logical_not,
    "__invert__": logical_not,
    "minimum": minimum,
    "maximum": maximum,
    "fmin": minimum,
    "fmax": maximum,
    "min": _torch_minmax("min"),
    "max": _torch_minmax("max"),
    "clamp": _clamp_kw,
    "clip": _clamp_kw,
    "where": where,
    "exp": exp,
    "exp2": exp2,
    "log": log,
    "log2": log2,
    "sqrt": sqrt,
    "rsqrt": rsqrt,
    "tanh": tanh,
    "sin": sin,
    "cos": cos,
    "sigmoid": sigmoid,
    "__getitem__": _getitem,
}


def _torch_function(func, args, kwargs):
    name = getattr(func, "__name__", None)
    op = _TORCH_OPS.get(name)
    if op is None:
        raise TypeError("%s is not supported on traced values in a flexjit mod (supported: "
                        "arithmetic, comparisons, & | ~, where, minimum, maximum, clamp, abs, "
                        "exp, exp2, log, log2, sqrt, rsqrt, tanh, sin, cos, sigmoid, and indexing "
                        "captured tensors)" % (getattr(func, "__qualname__", None) or func,))
    if name == "__getitem__":
        return op(*args, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "out" or v is None}
    if "out" in kwargs:
        raise TypeError("out= is not supported in a traced mod")
    if name in ("clamp", "clip"):
        x = args[0]
        lo = args[1] if len(args) > 1 else kwargs.get("min")
        hi = args[2] if len(args) > 2 else kwargs.get("max")
        return clamp(x, lo, hi)
    if name == "where" and "condition" in kwargs:
        return where(kwargs["condition"], kwargs.get("input", args[0] if args else None),
                     kwargs.get("other"))
    kwargs.pop("input", None)
    return op(*args, **kwargs)


# ---- tracing ----------------------------------------------------------------------------------


class TracedMod:
    """A traced mask_mod or score_mod: `kind` ('mask' or 'score'), the canonical `text`, the
    captured `buffers` (BufferRef: name, bound object, dtype, rank) and `params` (Param)."""

    def __init__(self, kind, text, buffers, params, fn=None):
        self.kind = kind
        self.text = text
        self.buffers = buffers
        self.params = params
        self.fn = fn

    def __repr__(self):
        return "TracedMod(%s, %r)" % (self.kind, self.text)


def _finish(result, kind, trace, fn):
    name = getattr(fn, "__name__", "mod")
    if kind == "mask":
        op = _Operand(result) if not isinstance(result, (list, tuple)) else None
        if op is None or op.type != "bool":
            got = "a %s" % (type(result).__name__ if op is None else op.type)
            raise TypeError("mask_mod %s returned %s; a mask_mod returns a bool (q_idx >= kv_idx, "
                            "combined with & | ~)" % (name, got))
        root = op.as_type("bool")
    else:
        op = _Operand(result) if not isinstance(result, (list, tuple)) else None
        if op is None or op.type == "bool":
            got = "a %s" % (type(result).__name__ if op is None else op.type)
            raise TypeError("score_mod %s returned %s; a score_mod returns a number (the new "
                            "score: use where(mask, score, -inf) for a bool)" % (name, got))
        root = op.as_type("float")
    return TracedMod(kind, to_text(root), list(trace.buffers), dict(trace.params), fn)


def _vars(trace, names):
    return [TracedValue(trace.graph.make(n, "float" if n == "score" else "int")) for n in names]


def trace_mask_mod(fn):
    """Traces mask_mod(b, h, q_idx, kv_idx) -> bool into a TracedMod."""
    if isinstance(fn, TracedMod):
        return fn
    if not callable(fn):
        raise TypeError("a mask_mod is a function (b, h, q_idx, kv_idx) -> bool, got a %s"
                        % type(fn).__name__)
    trace = _Trace()
    _current.append(trace)
    try:
        result = fn(*_vars(trace, ("b", "h", "q_idx", "kv_idx")))
        return _finish(result, "mask", trace, fn)
    finally:
        _current.pop()


def trace_score_mod(fn, inherited_buffers=()):
    """Traces score_mod(score, b, h, q_idx, kv_idx) -> float into a TracedMod. With
    `inherited_buffers` (a block mask's mod's BufferRefs), a tensor both capture keeps the mask's
    buffer name and new ones are numbered after them, so one set of bindings serves both."""
    if isinstance(fn, TracedMod):
        return fn
    if not callable(fn):
        raise TypeError("a score_mod is a function (score, b, h, q_idx, kv_idx) -> float, got a "
                        "%s" % type(fn).__name__)
    trace = _Trace(inherited_buffers)
    _current.append(trace)
    try:
        result = fn(*_vars(trace, ("score", "b", "h", "q_idx", "kv_idx")))
        return _finish(result, "score", trace, fn)
    finally:
        _current.pop()
