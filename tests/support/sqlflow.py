"""A static check that SQL text on the trusted side is never formatted from a name.

Walks Python source with ``ast`` and reports every place where SQL text is
built by formatting (an f-string, ``%``, ``str.format`` or ``+``) with a part
that is not known to be safe. The discipline it holds the code to:

- A part is *safe* when it is a constant; a call of one of the quoting
  functions of ``sandbox.sqltext`` (``ident``, ``sql_type``, ``sql_number``,
  ``sql_string``); ``int(...)``/``len(...)``; SQL that sqlglot generated
  (``expr.sql(dialect=...)``); a call of an SQL builder (a function whose name
  ends in ``_sql``); a name ending in ``_sql`` (or ``sql``); a constant
  mapping's entry; or a local name every assignment of which is safe.
- Every assignment to a name ending in ``_sql`` (and every ``append`` to such
  a list, every list or tuple literal assigned to it) must be safe, and so
  must every argument a call passes to a parameter named ``*_sql``, and every
  value an SQL builder returns: so a name that holds SQL got there safely.
- SQL text is: a formatted string whose constant parts hold an SQL keyword in
  capitals, anything passed as the statement of an ``execute``-like call, and
  anything assigned to a ``*_sql`` name or returned by an SQL builder.

It is deliberately strict and simple: code passes by quoting names at the
point where they meet SQL, and by naming SQL fragments ``*_sql``. A message
(not SQL) that happens to hold an SQL word in capitals says so on its line
with the comment ``# message, not SQL``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

QUOTING = {"ident", "sql_type", "sql_number", "sql_string"}
PRAGMA = "# message, not SQL"
HARMLESS_CALLS = {"int", "len"}
EXECUTE_ATTRS = {
    "execute",
    "executemany",
    "executescript",
    "exec_driver_sql",
    "sql",
    "query",
    "from_query",
}
KEYWORDS = re.compile(
    r"\b(SELECT|FROM|WHERE|COPY|CAST|JOIN|GROUP BY|ORDER BY|INSERT|UPDATE|DELETE|CREATE|"
    r"DROP|ALTER|ATTACH|PRAGMA|DESCRIBE|WITH|CASE|UNION|HAVING|VALUES|BEGIN|SET|LIMIT|"
    r"DISTINCT|TRUNCATE|INSTALL|LOAD|EXPORT|IMPORT)\b"
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _is_sql_name(name: str) -> bool:
    return name == "sql" or name.endswith("_sql")


def _callee(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for t in target.elts:
            yield from _target_names(t)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _constant_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    if isinstance(node, ast.BinOp):
        return _constant_text(node.left) + _constant_text(node.right)
    if isinstance(node, ast.Call) and _callee(node) == "format":
        return _constant_text(node.func.value) if isinstance(node.func, ast.Attribute) else ""
    return ""


def _is_formatting(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return bool(_constant_text(node))
    if isinstance(node, ast.Call) and _callee(node) == "format":
        return isinstance(node.func, ast.Attribute) and bool(_constant_text(node.func.value))
    return False


class _Scope:
    """Assignments of one function (or of a module's top level), by name."""

    def __init__(self, node: ast.AST, module: _Scope | None) -> None:
        self.module = module
        self.params: set[str] = set()
        self.assigned: dict[str, list[ast.expr | None]] = {}
        self.comprehension_iters: dict[str, list[ast.expr]] = {}
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    self.params.add(arg.arg)
        for sub in _own_nodes(node):
            if isinstance(sub, ast.Assign):
                for t in sub.targets:
                    for n, v in _pairs(t, sub.value):
                        self.assigned.setdefault(n, []).append(v)
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign) and sub.value is not None:
                for n in _target_names(sub.target):
                    self.assigned.setdefault(n, []).append(sub.value)
            elif isinstance(sub, ast.For | ast.AsyncFor):
                counter = _enumerate_counter(sub.target, sub.iter)
                for n in _target_names(sub.target):
                    self.assigned.setdefault(n, []).append(_INT if n == counter else None)
            elif isinstance(sub, ast.With | ast.AsyncWith):
                for i in sub.items:
                    if i.optional_vars is not None:
                        for n in _target_names(i.optional_vars):
                            self.assigned.setdefault(n, []).append(None)
            elif isinstance(sub, ast.comprehension):
                counter = _enumerate_counter(sub.target, sub.iter)
                for n in _target_names(sub.target):
                    if n == counter:
                        self.assigned.setdefault(n, []).append(_INT)
                    else:
                        self.comprehension_iters.setdefault(n, []).append(sub.iter)
            elif isinstance(sub, ast.NamedExpr):
                self.assigned.setdefault(sub.target.id, []).append(sub.value)


# What an enumerate() counter is assigned: an int, safe in SQL text.
_INT = ast.Call(func=ast.Name(id="int", ctx=ast.Load()), args=[], keywords=[])


def _enumerate_counter(target: ast.expr, iterable: ast.expr) -> str | None:
    """The counter's name in ``for i, x in enumerate(...)``, else None."""
    if (
        isinstance(iterable, ast.Call)
        and isinstance(iterable.func, ast.Name)
        and iterable.func.id == "enumerate"
        and isinstance(target, ast.Tuple)
        and target.elts
        and isinstance(target.elts[0], ast.Name)
    ):
        return target.elts[0].id
    return None


def _pairs(target: ast.expr, value: ast.expr) -> Iterator[tuple[str, ast.expr | None]]:
    """(name, the expression it gets) for an assignment; None when unknown (unpacking)."""
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Tuple | ast.List):
        if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
            for t, v in zip(target.elts, value.elts, strict=True):
                yield from _pairs(t, v)
        else:
            for n in _target_names(target):
                yield n, None
    else:
        for n in _target_names(target):
            yield n, None


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``node``'s body, not descending into nested functions or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield child
        yield from _own_nodes(child)


class _Module:
    def __init__(self, path: str, tree: ast.Module, text: str) -> None:
        self.path = path
        self.tree = tree
        self.lines = text.splitlines()
        self.top = _Scope(tree, None)
        self.violations: list[Violation] = []
        self.constant_maps = {
            name
            for name, values in self.top.assigned.items()
            if values
            and all(
                isinstance(v, ast.Dict) and all(isinstance(x, ast.Constant) for x in v.values)
                for v in values
            )
        }

    # -- safety ----------------------------------------------------------------------

    def safe(
        self, node: ast.expr | None, scope: _Scope, seen: frozenset[str] = frozenset()
    ) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(
                self.safe(v.value, scope, seen)
                for v in node.values
                if isinstance(v, ast.FormattedValue)
            )
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add):
                return self.safe(node.left, scope, seen) and self.safe(node.right, scope, seen)
            if isinstance(node.op, ast.Mod | ast.Mult):
                return self.safe(node.left, scope, seen) and self.safe(node.right, scope, seen)
            return False
        if isinstance(node, ast.Starred):
            return self.safe(node.value, scope, seen)
        if isinstance(node, ast.Tuple | ast.List):
            return all(self.safe(e, scope, seen) for e in node.elts)
        if isinstance(node, ast.BoolOp):
            return all(self.safe(v, scope, seen) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.safe(node.body, scope, seen) and self.safe(node.orelse, scope, seen)
        if isinstance(node, ast.Call):
            return self._safe_call(node, scope, seen)
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Name) and base.id in self.constant_maps:
                return True
            return self.safe(base, scope, seen)
        if isinstance(node, ast.Attribute):
            return _is_sql_name(node.attr)
        if isinstance(node, ast.Name):
            return self._safe_name(node.id, scope, seen)
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self.safe(node.elt, scope, seen)
        return False

    def _safe_call(self, node: ast.Call, scope: _Scope, seen: frozenset[str]) -> bool:
        name = _callee(node)
        if name in QUOTING or name in HARMLESS_CALLS:
            return True
        if name == "map" and node.args and isinstance(node.args[0], ast.Name):
            return node.args[0].id in QUOTING
        if name.endswith("_sql"):
            return True  # an SQL builder (returns str): its returns and *_sql arguments are checked
        if name == "sql" and any(k.arg == "dialect" for k in node.keywords):
            return True  # sqlglot generating SQL from an expression tree
        if name == "join" and isinstance(node.func, ast.Attribute):
            return self.safe(node.func.value, scope, seen) and all(
                self.safe(a, scope, seen) for a in node.args
            )
        if name in ("replace", "strip", "lower", "upper") and isinstance(node.func, ast.Attribute):
            return self.safe(node.func.value, scope, seen) and all(
                isinstance(a, ast.Constant) for a in node.args
            )
        if name == "format" and isinstance(node.func, ast.Attribute):
            return (
                self.safe(node.func.value, scope, seen)
                and all(self.safe(a, scope, seen) for a in node.args)
                and all(self.safe(k.value, scope, seen) for k in node.keywords)
            )
        return False

    def _safe_name(self, name: str, scope: _Scope, seen: frozenset[str]) -> bool:
        if _is_sql_name(name):
            return True  # checked where it is assigned, appended to or passed
        key = f"{id(scope)}:{name}"
        if key in seen:
            return True  # a cycle: the other assignments decide
        seen = seen | {key}
        if name in scope.comprehension_iters:
            return all(self._safe_iter(i, scope, seen) for i in scope.comprehension_iters[name])
        if name in scope.params:
            return False
        values = scope.assigned.get(name)
        if values is None and scope.module is not None:
            return self._safe_name(name, scope.module, seen)
        if not values:
            return False
        return all(self.safe(v, scope, seen) for v in values)

    def _safe_iter(self, node: ast.expr, scope: _Scope, seen: frozenset[str]) -> bool:
        if isinstance(node, ast.Tuple | ast.List):
            return all(self.safe(e, scope, seen) for e in node.elts)
        return self.safe(node, scope, seen)

    # -- where SQL text is ---------------------------------------------------------

    def check(self, node: ast.expr, scope: _Scope, what: str) -> None:
        if PRAGMA in self.lines[node.lineno - 1]:
            return  # a message that quotes SQL words, said so where it is written
        if not self.safe(node, scope):
            self.violations.append(Violation(self.path, node.lineno, what))

    def run(self) -> None:
        self._walk(self.tree, self.top)

    def _walk(self, node: ast.AST, scope: _Scope) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = _Scope(child, self.top)
                if not isinstance(child, ast.Lambda) and _is_builder(child):
                    for ret in _own_nodes(child):
                        if isinstance(ret, ast.Return) and ret.value is not None:
                            self.check(
                                ret.value,
                                inner,
                                f"SQL builder {child.name} returns text built unsafely",
                            )
                self._walk(child, inner)
                continue
            self._visit(child, scope)
            self._walk(child, scope)

    def _visit(self, sub: ast.AST, scope: _Scope) -> None:
        if (
            isinstance(sub, ast.expr)
            and _is_formatting(sub)
            and KEYWORDS.search(_constant_text(sub))
        ):
            self.check(sub, scope, "SQL text formatted from an unquoted part")
        if isinstance(sub, ast.Assign | ast.AnnAssign | ast.AugAssign) and sub.value is not None:
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            for t in targets:
                if isinstance(t, ast.Name) and _is_sql_name(t.id):
                    self.check(sub.value, scope, f"{t.id} is assigned text that is not safe SQL")
        if isinstance(sub, ast.Call):
            name = _callee(sub)
            if (
                name == "append"
                and isinstance(sub.func, ast.Attribute)
                and isinstance(sub.func.value, ast.Name)
                and _is_sql_name(sub.func.value.id)
            ):
                for a in sub.args:
                    self.check(a, scope, f"{sub.func.value.id} gets text that is not safe SQL")
            generated = name == "sql" and any(k.arg == "dialect" for k in sub.keywords)
            if (
                name in EXECUTE_ATTRS
                and isinstance(sub.func, ast.Attribute)
                and sub.args
                and not generated
                and _stringish(sub.args[0], scope)
            ):
                self.check(sub.args[0], scope, f"{name}() runs SQL text built unsafely")
            if name == "text" and sub.args:
                self.check(sub.args[0], scope, "text() is given SQL built unsafely")


def _is_builder(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A function named ``*_sql`` returning text (``str``, or a tuple starting with it)."""
    ret = ast.unparse(func.returns) if func.returns is not None else ""
    return func.name.endswith("_sql") and (ret == "str" or ret.startswith("tuple[str"))


def _stringish(node: ast.expr, scope: _Scope) -> bool:
    """Whether ``node`` is (or a local name holding) string formatting; calls that
    build statements some other way (SQLAlchemy, sqlglot) are not text."""
    if isinstance(node, ast.Constant):
        return False
    if _is_formatting(node):
        return True
    if isinstance(node, ast.Name):
        return any(v is not None and _is_formatting(v) for v in scope.assigned.get(node.id, []))
    return False


def _sql_param_calls(modules: list[_Module]) -> list[Violation]:
    """Every call passing an unsafe value to a parameter named ``*_sql``."""
    signatures: dict[str, list[str]] = {}
    for m in modules:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
                if any(_is_sql_name(p) for p in params) or any(
                    _is_sql_name(a.arg) for a in node.args.kwonlyargs
                ):
                    signatures[node.name] = params + [a.arg for a in node.args.kwonlyargs]
    found: list[Violation] = []
    for m in modules:
        scopes = _scopes_by_call(m)
        for call, scope in scopes:
            params = signatures.get(_callee(call))
            if not params:
                continue
            offset = 1 if params and params[0] in ("self", "cls") else 0
            for i, a in enumerate(call.args):
                j = i + offset
                if j < len(params) and _is_sql_name(params[j]) and not m.safe(a, scope):
                    found.append(Violation(m.path, a.lineno, f"{params[j]} gets unsafe text"))
            for k in call.keywords:
                if k.arg and _is_sql_name(k.arg) and not m.safe(k.value, scope):
                    found.append(Violation(m.path, k.value.lineno, f"{k.arg} gets unsafe text"))
    return found


def _scopes_by_call(m: _Module) -> list[tuple[ast.Call, _Scope]]:
    out: list[tuple[ast.Call, _Scope]] = []

    def visit(node: ast.AST, scope: _Scope) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, _Scope(child, m.top))
                continue
            if isinstance(child, ast.Call):
                out.append((child, scope))
            visit(child, scope)

    visit(m.tree, m.top)
    return out


def check_sources(files: Iterable[tuple[str, str]]) -> list[Violation]:
    """Violations in the given (path, source text) pairs."""
    modules = []
    for path, text in files:
        m = _Module(path, ast.parse(text, filename=path), text)
        m.run()
        modules.append(m)
    found = [v for m in modules for v in m.violations] + _sql_param_calls(modules)
    return sorted(set(found), key=lambda v: (v.path, v.line, v.what))


def check_tree(root: Path, packages: Iterable[str], exclude: Iterable[str]) -> list[Violation]:
    """Violations in every ``.py`` file of ``packages`` under ``root``, less ``exclude``
    (paths relative to ``root``; a directory excludes everything below it)."""
    excluded = [root / e for e in exclude]
    files = []
    for package in packages:
        for f in sorted((root / package).rglob("*.py")):
            if any(f == e or e in f.parents for e in excluded):
                continue
            files.append((str(f.relative_to(root)), f.read_text(encoding="utf-8")))
    return check_sources(files)
