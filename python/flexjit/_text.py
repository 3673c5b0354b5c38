"""The canonical text of the mod language (compiler/Printer.cpp), written from Python.

An expression DAG of `Node`s, hash-consed per `Graph` as the C++ DSL interns its nodes
(structurally equal subtrees are one node), printed as the library's printer prints: every
operation parenthesized, a node used twice or more (not a leaf) bound once by
``let tN = ...``, floats as the shortest text that reads back as the same float32, marked
``f``. Text written here therefore reads back through flexjit_mask_mod_from_text and prints
back identically.
"""

import math
import struct

# Node kinds, spelled as the text spells them.
INFIX = ("+", "-", "*", "/", "//", "%", "<", "<=", "==", "!=", "&&", "||", "&", "|")
CALLS = ("min", "max", "abs", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh",
         "tanh_approx", "sin", "cos", "where")
UNARY_FLOAT = ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh", "tanh_approx", "sin", "cos")
VARS = ("b", "h", "q_idx", "kv_idx", "score")
TYPES = ("bool", "int", "float")
DTYPES = ("i32", "f32", "f16", "bf16", "bool")
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def dtype_value_type(dtype):
    """The expression type a load of this buffer dtype produces."""
    return {"i32": "int", "bool": "bool"}.get(dtype, "float")


def to_f32(value):
    """A Python float rounded to float32 (beyond its range: +-inf, as a float32 cast)."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def f32_bits(value):
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _round_trips(text, bits):
    try:
        return f32_bits(to_f32(float(text))) == bits
    except (OverflowError, ValueError):
        return False


def _shortest_digits(v):
    """(digits, exp10) of a finite positive float32 `v`, v ~ d.ddd * 10**exp10: the fewest
    significant digits that read back as v, the closest to v when several do (fmt's
    shortest round-trip text, which the printer writes)."""
    bits = f32_bits(v)
    for precision in range(1, 10):
        nearest = "%.*e" % (precision - 1, v)
        mantissa, exp = nearest.split("e")
        digits = mantissa.replace(".", "")
        exp10 = int(exp)
        candidates = []
        as_int = int(digits)
        for delta in (0, -1, 1):
            d = as_int + delta
            if d <= 0:
                continue
            ds, e = str(d), exp10
            if len(ds) > precision:  # 999 + 1 = 1000: one more digit, one more decade
                ds, e = ds[:precision], e + 1
            elif len(ds) < precision:  # 100 - 1 = 99
                ds, e = ds + "9", e - 1
            text = "%s.%se%d" % (ds[0], ds[1:] or "0", e)
            if _round_trips(text, bits):
                candidates.append((abs(float(text) - v), ds, e))
        if candidates:
            _, ds, e = min(candidates)
            return ds.rstrip("0") or "0", e
    raise AssertionError("no float32 text for %r" % v)  # 9 digits always suffice


def float_text(value):
    """The printer's text of a float32 value: 1.5f, -0.0f, 1e+20f, inf, -nan, nan(0x7fc00001)."""
    value = to_f32(value)
    if math.isnan(value):
        bits = f32_bits(value)
        if bits == 0x7FC00000:
            return "nan"
        if bits == 0xFFC00000:
            return "-nan"
        return "nan(0x%08x)" % bits
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    v = abs(value)
    if v == 0.0:
        body = "0"
    else:
        digits, exp10 = _shortest_digits(v)
        if exp10 < -4 or exp10 >= 16:  # fmt's (and Python's repr's) exponent thresholds
            body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            body += "e%s%02d" % ("-" if exp10 < 0 else "+", abs(exp10))
        elif exp10 < 0:
            body = "0." + "0" * (-exp10 - 1) + digits
        elif len(digits) <= exp10 + 1:
            body = digits + "0" * (exp10 + 1 - len(digits))
        else:
            body = digits[: exp10 + 1] + "." + digits[exp10 + 1:]
    text = sign + body
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


class Node:
    """One expression node: kind (a VARS name, 'int', 'float', 'bool' constants, 'param',
    'load', an INFIX operator, a CALLS name, 'neg', 'not' or 'cast'), its type ('bool', 'int',
    'float'), operands (Nodes) and value (a constant's value, a var's or param's name, a
    load's buffer (name, dtype, rank))."""

    __slots__ = ("kind", "type", "operands", "value", "__weakref__")

    def __init__(self, kind, type_, operands, value):
        self.kind = kind
        self.type = type_
        self.operands = operands
        self.value = value

    def is_leaf(self):
        return not self.operands

    def __repr__(self):
        return "Node(%s)" % to_text(self)


class Graph:
    """Hash-consing node factory: make() returns the existing node for a structurally equal
    (kind, type, value, operands) request, as the C++ intern table does."""

    def __init__(self):
        self._nodes = {}

    def make(self, kind, type_, operands=(), value=None):
        operands = tuple(operands)
        key_value = value
        if kind == "float":
            key_value = f32_bits(value)
        key = (kind, type_, key_value, tuple(id(op) for op in operands))
        node = self._nodes.get(key)
        if node is None:
            node = Node(kind, type_, operands, value)
            self._nodes[key] = node
        return node


def topo_order(root):
    """Post-order of the DAG, each node once, operands first in operand order (the C++
    topo_order: a node is marked when pushed)."""
    order = []
    seen = {id(root)}
    stack = [[root, 0]]
    while stack:
        top = stack[-1]
        node = top[0]
        if top[1] < len(node.operands):
            op = node.operands[top[1]]
            top[1] += 1
            if id(op) not in seen:
                seen.add(id(op))
                stack.append([op, 0])
            continue
        order.append(node)
        stack.pop()
    return order


def _leaf_text(node):
    if node.kind == "int":
        return str(node.value)
    if node.kind == "float":
        return float_text(node.value)
    if node.kind == "bool":
        return "true" if node.value else "false"
    if node.kind in VARS:
        return node.kind
    if node.kind == "param":
        name, type_ = node.value
        return "%s:%s" % (name, type_)
    raise AssertionError("%s is not a leaf" % node.kind)


def to_text(root):
    """The canonical text of the expression rooted at `root` (compiler/Printer.cpp's print)."""
    order = topo_order(root)
    uses = {}
    for node in order:
        for op in node.operands:
            uses[id(op)] = uses.get(id(op), 0) + 1
    text = {}
    lets = []
    for node in order:
        if node.is_leaf():
            s = _leaf_text(node)
        else:
            ops = [text[id(op)] for op in node.operands]
            if node.kind == "load":
                name, dtype, rank = node.value
                s = "%s:%s:%d[%s]" % (name, dtype, rank, ", ".join(ops))
            elif node.kind in INFIX:
                s = "(%s %s %s)" % (ops[0], node.kind, ops[1])
            else:
                fn = {"neg": "-", "not": "!", "cast": node.type}.get(node.kind, node.kind)
                s = "%s(%s)" % (fn, ", ".join(ops))
        if not node.is_leaf() and uses.get(id(node), 0) >= 2:
            name = "t%d" % len(lets)
            lets.append("let %s = %s\n" % (name, s))
            s = name
        text[id(node)] = s
    return "".join(lets) + text[id(root)]
