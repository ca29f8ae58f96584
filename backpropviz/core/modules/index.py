"""Indexing z[i], z[:2], W[i, j], z[[0, 2, 2]]: gather forward, scatter into zeros backward (7.58),
and the index written as text and as a trace file's constants."""
from __future__ import annotations


import math

import numpy as np

from .. import expr as E
from ..errors import BackpropError, brief, shape_str
from ..expr import v, z
from ..rules import TAG_CHAIN, rule
from .ops import Op

# --- indexing: z[i], z[:2], W[i, j], z[[0, 2, 2]]; backward: scatter into zeros (7.58) ----------

def _slice_text(p, n):
    """Positions p (≥ 2 of them, or one) written as a slice a:b:s if they are evenly spaced, else
    None; n is the axis length (None if unknown), so that ends can be left out as Python does."""
    s = 1 if p.size == 1 else int(p[1] - p[0])
    if s == 0 or np.any(np.diff(p) != s):
        return None
    first, stop = int(p[0]), int(p[-1]) + s
    start = "" if first == (0 if s > 0 else (n - 1 if n is not None else None)) else str(first)
    end = "" if (s > 0 and n is not None and stop >= n) or (s < 0 and stop < 0) else str(stop)
    return f"{start}:{end}" + ("" if s == 1 else f":{s}")


def _axis_text(p, n):
    """One axis of an index: a number, a slice (':' for the whole axis) or a list."""
    p = np.asarray(p).ravel()
    if p.size == 1 and np.ndim(p) == 0:
        return str(int(p))
    text = _slice_text(p, n)
    if text == f"0:{n}" or text == ":":
        return ":"
    return text if text is not None else "[" + ", ".join(str(int(x)) for x in p) + "]"


def index_text(shape, positions) -> str:
    """An index as NumPy would write it, from z's shape (None: a vector of unknown length) and the
    flat positions of the entries it selects: [0], [:2], [1, 0], [0] (a row), [[0, 2, 2]]."""
    pos = np.asarray(positions, dtype=np.int64)
    if shape is not None and len(shape) > 2:
        return ".flat[" + _list_text(pos) + "]"
    if shape is None or len(shape) <= 1:
        n = None if shape is None else (shape[0] if shape else 1)
        if pos.ndim == 0:
            return f"[{int(pos)}]"
        return "[" + ((_slice_text(pos, n) if pos.ndim == 1 else None) or _list_text(pos)) + "]"
    m, n = shape
    r, c = np.divmod(pos, n)
    if pos.ndim == 0:
        return f"[{int(r)}, {int(c)}]"
    if pos.ndim == 1 and np.all(r == r[0]):                       # part of a row
        cols = _axis_text(c, n)
        return f"[{int(r[0])}]" if cols == ":" else f"[{int(r[0])}, {cols}]"
    if pos.ndim == 1 and np.all(c == c[0]):                       # part of a column
        return f"[{_axis_text(r, m)}, {int(c[0])}]"
    if pos.ndim == 2 and np.all(r == r[:, :1]) and np.all(c == c[:1, :]):    # rows × columns
        rows, cols = _axis_text(r[:, 0], m), _axis_text(c[0], n)
        if rows.startswith("[") + cols.startswith("[") < 2:      # NumPy would zip two lists
            return f"[{rows}]" if cols == ":" else f"[{rows}, {cols}]"
    return f"[{_list_text(r)}, {_list_text(c)}]"                  # entry by entry: (r_k, c_k)


def _list_text(p):
    p = np.asarray(p)
    if p.ndim <= 1:
        return "[" + ", ".join(str(int(x)) for x in np.ravel(p)) + "]"
    return "[" + ", ".join(_list_text(row) for row in p) + "]"


def _index_consts(shape, positions) -> dict:
    """The index as numbers (what a trace file keeps): z's shape (zn = −1: a vector of unknown
    length), the output's shape, and the flat positions p0, p1, … of the selected entries."""
    c = {"zn": -1.0 if shape is None else float(len(shape))}
    c.update((f"z{i}", float(n)) for i, n in enumerate(shape or ()))
    c["on"] = float(np.ndim(positions))
    c.update((f"o{i}", float(n)) for i, n in enumerate(np.shape(positions)))
    c.update((f"p{i}", float(p)) for i, p in enumerate(np.ravel(positions)))
    return c


def index_from_consts(c: dict):
    """(z's shape or None, positions) back from ``_index_consts``; a BackpropError if they do
    not describe an index (constants from a file: missing, fractional, out of range)."""
    def whole(key, low, high, default=None):
        x = c.get(key, default)
        if x is None:
            raise BackpropError(f"the index's constant {key} is missing")
        if not (isinstance(x, (int, float, np.number)) and math.isfinite(x) and x == int(x)
                and low <= x <= high):
            raise BackpropError(f"the index's constant {key} is {brief(x, 20)}, not a whole "
                                f"number from {low} to {high}")
        return int(x)
    big = np.iinfo(np.int64).max
    zn = whole("zn", -1, 64, -1.0)                 # numpy's most axes
    shape = None if zn < 0 else tuple(whole(f"z{i}", 0, big) for i in range(zn))
    out = tuple(whole(f"o{i}", 0, big) for i in range(whole("on", 0, 2, 0.0)))
    k = math.prod(out)
    if k > len(c):                  # every position is a constant of its own: so many are not
        raise BackpropError(f"the index selects {k} entries (o0 …) but has fewer constants than "
                            f"that: the positions p0 … are missing")
    # the positions at once (an index may select 100,000 entries); consts are floats, exact up
    # to 2⁵³
    end = min(math.prod(shape) - 1 if shape is not None else big, 2 ** 53)
    ps = [c.get(f"p{i}") for i in range(k)]
    try:
        arr = np.array(ps, dtype=float)
    except (TypeError, ValueError):                 # a position missing (None) or not a number
        arr = None
    ok = arr is not None and np.all((arr == np.floor(arr)) & (arr >= 0) & (arr <= end))
    if not ok:
        for i in range(k):                          # the first bad one, said as whole() says it
            whole(f"p{i}", 0, end)
    return shape, arr.astype(np.int64).reshape(out)


class _Gather(E.Expr):
    """z[i] in a rule: the entries of z at the index (text: u[1][0], numbers: [1, 2, 3][0])."""

    prec = E.POSTFIX

    def __init__(self, a, text, positions):
        self.a, self.text, self.positions = a, text, positions

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        return self.a.render(fmt, E.ATOM) + (r"\text{" + self.text + "}" if fmt.tex else self.text)

    def eval(self, env):
        x = np.asarray(self.a.eval(env), dtype=float)
        return x.ravel()[self.positions]


class _Scatter(E.Expr):
    """v scattered into zeros of z's shape at the index; repeated positions add up (np.add.at)."""

    prec = E.SUM

    def __init__(self, v, text, positions, shape):
        self.v, self.text, self.positions, self.shape = v, text, positions, shape

    def children(self):
        return (self.v,) if not isinstance(self.shape, E.Expr) else (self.v, self.shape)

    def _render(self, fmt):
        arg = self.v.render(fmt, E.PRODUCT)
        if fmt.tex:
            return arg + r"\ \text{scattered into zeros at } \text{" + self.text + "}"
        return arg + " scattered into zeros at " + self.text

    def eval(self, env):
        shape = np.shape(self.shape.eval(env)) if isinstance(self.shape, E.Expr) else self.shape
        g = np.zeros(int(np.prod(shape)))
        vals = np.asarray(self.v.eval(env), dtype=float)      # a vector may come as a column
        vals = vals.ravel() if vals.size == self.positions.size else \
            np.broadcast_to(vals, self.positions.shape).ravel()
        np.add.at(g, self.positions.ravel(), vals)
        return g.reshape(shape)


def _gather_expr(c):
    shape, pos = index_from_consts(c.consts)
    return _Gather(z, index_text(shape, pos), pos)


def _scatter_expr(c):
    shape, pos = index_from_consts(c.consts)
    return _Scatter(v, index_text(shape, pos), pos, z if shape is None else shape)


class Index(Op):
    """z[i]: the entries of z at a constant index (a number, a slice, a tuple of them, an integer
    array or a boolean mask, as NumPy reads it). Backward by (7.58): ∂u_k/∂z_p is 1 where the
    k-th selected entry is z_p and 0 elsewhere, so B[z[i], z](v) is v scattered into zeros of z's
    shape, and an entry selected several times gets the sum of its v's (np.add.at).

    ``shape`` is z's shape; the index is kept as the flat positions of the entries it selects
    (what a trace file stores). Without a shape the index must be whole numbers ≥ 0: positions
    in a vector z.
    """

    label, symbol, can_overflow = "(·)[·]", "[]", False

    def __init__(self, index=0, shape=None, name=None):
        super().__init__(name)
        self.shape = None if shape is None else tuple(int(n) for n in shape)
        self.positions = _positions(index, self.shape)
        self.label = self.label_for(self.consts)

    @classmethod
    def label_for(cls, consts):
        if "on" not in consts:
            return cls.label
        return "(·)" + index_text(*index_from_consts(consts))

    @property
    def consts(self):
        return _index_consts(self.shape, self.positions)

    @property
    def text(self) -> str:
        """The index as NumPy writes it: [0], [:2], [1, 0]."""
        return index_text(self.shape, self.positions)

    def check_input(self, z, where):
        if self.shape is not None and np.shape(z) != self.shape:
            raise BackpropError(f"{where}: the index {self.text} was made for an input of shape "
                                f"{shape_str(np.empty(self.shape))}; this one is {shape_str(z)}")
        if self.shape is None and (np.ndim(z) != 1 or self.positions.max() >= np.size(z)):
            raise BackpropError(f"{where}: the index {self.text} needs a vector with more than "
                                f"{int(self.positions.max())} entries; got {shape_str(z)}")

    @rule("F", "(F)", _gather_expr)
    def forward(self, z):
        return np.asarray(z, dtype=float).ravel()[self.positions]

    @rule("B1", TAG_CHAIN, _scatter_expr)
    def backward(self, z, v):
        g = np.zeros(np.size(z))
        np.add.at(g, self.positions.ravel(), np.broadcast_to(v, self.positions.shape).ravel())
        return g.reshape(np.shape(z))

    def __repr__(self):
        return f"Index({self.text})"


def _positions(index, shape) -> np.ndarray:
    """The flat positions (into z.ravel()) of the entries z[index] selects, shaped like z[index]."""
    if isinstance(index, list):             # a list is an array of positions, as in NumPy
        try:
            index = np.asarray(index)
        except (ValueError, TypeError):     # ragged: [[0], [0, 1]]
            raise BackpropError(f"index {brief(index)}: a list of positions is a list of whole "
                                f"numbers, or of lists of equal length") from None
    if shape is None:
        pos = np.asarray(index)
        if pos.dtype.kind not in "iu" or pos.size == 0 or np.any(pos < 0) or \
                np.any(pos > np.iinfo(np.int64).max):       # 2**63 would wrap round to < 0
            raise BackpropError(f"index: without the input's shape the index must be whole "
                                f"numbers from 0 to 2⁶³ − 1 (positions in a vector); got "
                                f"{brief(index)}")
        return pos.astype(np.int64)
    _check_index(index, shape)
    try:
        with np.errstate(all="ignore"):
            pos = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[index]
    except (IndexError, ValueError, TypeError, OverflowError) as err:
        raise BackpropError(f"index {brief(index)} does not fit a value of shape "
                            f"{shape_str(np.empty(shape))}: {err}") from None
    pos = np.asarray(pos, dtype=np.int64)
    if pos.size == 0:
        raise BackpropError(f"index {brief(index)} selects no entries of a value of shape "
                            f"{shape_str(np.empty(shape))}")
    if pos.ndim > 2:
        raise BackpropError(f"index {brief(index)} gives shape {shape_str(pos)}; values here are "
                            f"at most matrices")
    return pos


def _check_index(index, shape):
    """An index is made of constants: numbers, slices, ..., arrays of whole numbers or booleans."""
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if getattr(p, "_bpv_apply", None) is not None:
            raise BackpropError("index: the index must be constant numbers, not a traced value "
                                "(the position of an entry is not differentiable)")
        far = _furthest(p)
        if far is not None and not _LONG[0] <= far <= _LONG[1]:
            # numpy would overflow (z[2**63]) or wrap round (z[[2**63]]) before it says so
            raise BackpropError(f"index {brief(index)} does not fit a value of shape "
                                f"{shape_str(np.empty(shape))}: "
                                + ("it is" if p is index else f"the position {brief(far, 24)} is")
                                + " out of range (along an axis of n entries, positions are "
                                  "0 … n−1, or −n … −1)")
        if isinstance(p, (float, np.floating)) or (isinstance(p, np.ndarray)
                                                    and p.dtype.kind not in "iub"):
            raise BackpropError(f"index: positions are whole numbers; got {brief(p)}")


def _furthest(p):
    """The position furthest from 0 in a part of an index made of whole numbers (None if it is
    not: a slice, booleans, a ragged list, which numpy then refuses itself)."""
    if isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)):
        return int(p)
    if isinstance(p, (list, np.ndarray)):
        try:
            a = np.asarray(p)
        except (ValueError, TypeError):
            return None
        if a.dtype.kind in "uO" and a.size and all(isinstance(q, (int, np.integer))
                                                   for q in a.ravel()):
            return max(a.ravel().tolist(), key=abs)
    return None


_LONG = (-2 ** 63, 2 ** 63 - 1)     # the positions numpy can index with
