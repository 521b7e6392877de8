"""Turning a small model's code replies into files: pure functions, no model, no I/O.

A 0.5B model asked for a module often adds tests, prints and example calls; asked for tests
it often forgets the import or calls the test at the bottom. These functions keep what a
module or a test file should hold, so the model only has to write code.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, cast

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
"""A fenced block; an unclosed last fence (the reply was cut at the stop sequence) counts."""
PY_FILE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\.py\b")
TEST_IMPORTS = frozenset({"pytest", "unittest"})


@dataclass
class SplitCode:
    """A reply split into the module's code and any tests the model wrote with it."""

    module: str
    tests: str
    names: list[str] = field(default_factory=list)
    """Public functions and classes the module defines, in order."""
    error: str | None = None
    """Why the code could not be parsed (a SyntaxError), else None."""


def code_of(reply: str) -> str:
    """The code in a reply: its fenced blocks joined, or the whole reply if it has none.

    A reply cut off by the token cap ends inside a statement: the incomplete tail is dropped
    (back to the last top-level statement that parses), so the finished functions survive.
    """
    blocks = [b.strip("\n") for b in FENCE.findall(reply) if b.strip()]
    text = "\n\n".join(blocks) if blocks else reply
    return salvage(text.strip("\n") + "\n")


def cut_inside(reply: str, hit_cap: bool) -> str | None:
    """The definition a reply was cut off inside, or None when every definition is whole.

    A reply is cut when its code does not parse (the tail was dropped by ``code_of``) or
    when it reached the token cap. It was cut inside a definition when the dropped tail is
    indented (it continued a body) or, at the cap, when the code ends in a definition: a
    function cut mid-loop may still parse, and must not pass as finished."""
    blocks = [b.strip("\n") for b in FENCE.findall(reply) if b.strip()]
    text = ("\n\n".join(blocks) if blocks else reply).strip("\n") + "\n"
    kept = salvage(text)
    whole = kept.strip() == text.strip()
    if whole and not hit_cap:
        return None
    try:
        tree = ast.parse(kept)
    except SyntaxError:
        return "the code"
    if not tree.body:
        return "the code" if not whole else None
    last = tree.body[-1]
    if not isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return None
    dropped = [line for line in text.splitlines()[len(kept.splitlines()) :] if line.strip()]
    if (dropped and dropped[0][:1].isspace()) or (whole and hit_cap):
        return last.name
    return None


def salvage(code: str) -> str:
    """``code`` if it parses, else its longest prefix of whole lines that does (a reply cut
    off by the token cap keeps its finished statements)."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        head = "\n".join(lines[:end]).rstrip() + "\n"
        try:
            ast.parse(head)
        except SyntaxError:
            continue
        return head
    return code


def _is_test_def(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name.startswith("test")
    if isinstance(node, ast.ClassDef):
        return node.name.startswith("Test")
    return False


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports_test_framework(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] in TEST_IMPORTS for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] in TEST_IMPORTS
    return False


def _segment(source: str, node: ast.stmt) -> str:
    lines = source.splitlines()
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    end = node.end_lineno or node.lineno
    return "\n".join(lines[start - 1 : end])


def split_module(code: str) -> SplitCode:
    """Keep the module's definitions; move test functions, bare asserts and example calls out.

    Kept: imports (except test frameworks), functions, classes, assignments. Moved to
    ``tests``: ``test*`` functions, ``Test*`` classes and top-level asserts. Dropped: other
    top-level expressions (prints, example calls) and ``if __name__ == ...`` blocks.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        return SplitCode(module=code, tests="", error=f"SyntaxError: {err.msg} (line {err.lineno})")
    keep: list[str] = []
    tests: list[str] = []
    names: list[str] = []
    for node in tree.body:
        if _is_test_def(node) or isinstance(node, ast.Assert):
            tests.append(_segment(code, node))
        elif _is_main_guard(node) or _imports_test_framework(node):
            continue
        elif isinstance(node, ast.Import | ast.ImportFrom) and not (
            _importable(node) or _used(node, tree)
        ):
            continue  # an unused import of a module that is not there (copied from an example)
        elif isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            continue  # print(...), example calls
        else:
            if isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            ) and not node.name.startswith("_"):
                names.append(node.name)
            keep.append(_segment(code, node))
    module = "\n\n\n".join(keep).strip("\n") + "\n" if keep else ""
    return SplitCode(module=module, tests="\n\n\n".join(tests), names=names)


def module_name(text: str, names: list[str]) -> str:
    """The module's file name: the first non-test ``x.py`` the task names, else the first
    function's name (``is_palindrome`` -> ``palindrome.py``), else ``solution.py``."""
    for match in PY_FILE.finditer(text):
        stem = match.group(1)
        if not stem.startswith("test"):
            return f"{stem}.py"
    if names:
        stem = re.sub(r"^(is|has|get|make|compute|calculate|check)_", "", names[0]) or names[0]
        return f"{stem.lower()}.py"
    return "solution.py"


def assert_key(node: ast.Assert) -> tuple[str, str] | None:
    """``(call, expected)`` for ``assert f(x) == y`` / ``assert f(x) is y`` / ``assert f(x)``."""
    test = node.test
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.left, ast.Call)
        and isinstance(test.ops[0], ast.Eq | ast.Is)
    ):
        return ast.unparse(test.left), ast.unparse(test.comparators[0])
    if isinstance(test, ast.Call):
        return ast.unparse(test), "True"
    if (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and isinstance(test.operand, ast.Call)
    ):
        return ast.unparse(test.operand), "False"
    return None


def _explode(node: ast.FunctionDef, asserts: list[ast.Assert]) -> list[str]:
    """One test function per assert, so one wrong expectation fails one test, not all."""
    if len(asserts) == 1:
        return [f"def {node.name}():\n    {ast.unparse(asserts[0])}"]
    return [f"def {node.name}_{i}():\n    {ast.unparse(a)}" for i, a in enumerate(asserts, 1)]


SETUP_STATEMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)
"""What a test may do besides asserting for its asserts to be split one per test: build
objects and call methods on them (``inv = Inventory()``, ``inv.add('a', 2)``)."""


def _with_setup(
    node: ast.FunctionDef, keep: Any
) -> list[str] | None:
    """A test function that sets up state before and between its asserts, as one test per
    kept assert (``keep(assert, bound_names) -> bool``), each replaying everything before it.
    An earlier assert is replayed as a bare expression, so a call it makes with a side effect
    (``stack.pop()``) still happens and one wrong expectation fails one test, not all. None
    when the function is not of that shape (loops, ``with``, branches: kept as it is)."""
    if node.args.args or node.decorator_list or not node.body:
        return None
    if not all(isinstance(stmt, (ast.Assert, *SETUP_STATEMENTS)) for stmt in node.body):
        return None
    if not any(isinstance(stmt, ast.Assert) for stmt in node.body):
        return None
    tests: list[list[ast.stmt]] = []
    before: list[ast.stmt] = []
    bound: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        if isinstance(stmt, ast.Assert):
            if keep(stmt, bound) and len(tests) < MAX_ASSERTS:
                tests.append([*before, cast(ast.stmt, float_tolerant(stmt)[0])])
            before.append(ast.Expr(stmt.test))
            continue
        before.append(stmt)
        bound |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if not tests:
        return []
    suffix = (lambda i: "") if len(tests) == 1 else (lambda i: f"_{i}")
    return [
        f"def {node.name}{suffix(i)}():\n" + "\n".join(
            "    " + line for stmt in body for line in ast.unparse(ast.fix_missing_locations(stmt)).splitlines()
        )
        for i, body in enumerate(tests, 1)
    ]


def checked_asserts(asserts: list[ast.Assert]) -> list[ast.Assert]:
    """The asserts without repeats and without contradicting pairs (the same call expected
    to give two different values: at least one of them is wrong, and code cannot tell which)."""
    expected: dict[str, set[str]] = {}
    for a in asserts:
        key = assert_key(a)
        if key is not None:
            expected.setdefault(key[0], set()).add(key[1])
    seen: set[str] = set()
    kept = []
    for a in asserts:
        text = ast.unparse(a)
        key = assert_key(a)
        if text in seen or (key is not None and len(expected[key[0]]) > 1):
            continue
        seen.add(text)
        kept.append(a)
    return kept


def _has_float(node: ast.expr) -> bool:
    """Whether ``node`` is a literal (number, list, tuple, dict of them) holding a float."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def _approx(node: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Attribute(value=ast.Name(id="pytest", ctx=ast.Load()), attr="approx",
                                       ctx=ast.Load()), args=[node], keywords=[])  # fmt: skip


class _FloatEquality(ast.NodeTransformer):
    """``assert f(x) == 0.3`` -> ``assert f(x) == pytest.approx(0.3)``: a float written in a
    test is a decimal rounding of the value it means (``c * 9 / 5 + 32`` for 37 is
    98.60000000000001, not 98.6), so exact equality fails a right module."""

    changed = False

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq | ast.NotEq):
            right = test.comparators[0]
            if _has_float(right) and not _has_float(test.left):
                test.comparators = [_approx(right)]
                self.changed = True
            elif _has_float(test.left) and not _has_float(right):
                test.left = _approx(test.left)
                self.changed = True
        return node


def float_tolerant(node: ast.stmt) -> tuple[ast.stmt, bool]:
    """``node`` (an assert or a test function) with float equalities compared approximately
    (see ``_FloatEquality``), and whether anything changed."""
    fixer = _FloatEquality()
    fixed = fixer.visit(node)
    return ast.fix_missing_locations(fixed), fixer.changed


def _only_asserts(node: ast.stmt) -> list[ast.Assert] | None:
    """The asserts of a plain test function (asserts, prints, docstring only), else None."""
    if not isinstance(node, ast.FunctionDef) or node.args.args or node.decorator_list:
        return None
    asserts = []
    for stmt in node.body:
        if isinstance(stmt, ast.Assert):
            asserts.append(stmt)
        elif not isinstance(stmt, ast.Expr):  # docstrings and print(...) calls are dropped
            return None
    return asserts


def vacuous(node: ast.Assert, names: set[str]) -> bool:
    """Whether an assert cannot fail for any module: it uses none of the module's ``names``,
    or only asks whether a thing exists (``callable(f)``, ``hasattr``, ``x is not None``,
    a constant). Such a check is no evidence, so it is never counted as a test."""
    test = node.test
    if not any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(test)):
        return True
    if isinstance(test, ast.Constant | ast.Name | ast.Attribute):
        return True  # a constant, or whether a name is truthy (``assert f``: a cut-off line)
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id in (
        "callable", "hasattr"
    ):
        return True
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        right = test.comparators[0]
        none = isinstance(right, ast.Constant) and right.value is None
        if none and isinstance(test.ops[0], ast.IsNot | ast.NotEq):
            return True
    return False


def _binds(node: ast.Assign, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for t in node.targets for n in ast.walk(t))


def _bound_by(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def _used(node: ast.Import | ast.ImportFrom, tree: ast.Module) -> bool:
    """Whether a name the import binds is used in the file (pytest is always kept)."""
    bound = _bound_by(node)
    if "pytest" in bound:
        return True
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return bool(bound & used)


def _importable(node: ast.Import | ast.ImportFrom, siblings: Collection[str] = ()) -> bool:
    """Whether the import can work in the sandbox: the standard library, pytest, or one of
    ``siblings`` (the project's modules written before this one, which it uses). Anything
    else a small model's tests import is made up (``from even import is_even``, copied from
    an example, used in an assert): only the module under test and its siblings are there."""
    if isinstance(node, ast.ImportFrom):
        roots = [(node.module or "").split(".")[0]] if not node.level else [""]
    else:
        roots = [a.name.split(".")[0] for a in node.names]
    return all(r == "pytest" or r in sys.stdlib_module_names or r in siblings for r in roots)


def _unknown_names(node: ast.AST, known: set[str]) -> set[str]:
    """Names ``node`` reads that nothing defines: not ``known``, not bound inside it
    (arguments, assignments, comprehension variables), not builtins."""
    bound = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    bound |= {a.arg for n in ast.walk(node) if isinstance(n, ast.arguments)
              for a in [*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg] if a}  # fmt: skip
    bound |= {n.name for n in ast.walk(node) if isinstance(n, ast.ExceptHandler) and n.name}
    read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return read - bound - known - set(dir(builtins))


MAX_ASSERTS = 6
"""Asserts kept per test function: each is an expected value the model guessed, and a small
model's guesses get worse as the inputs grow (its seventh FizzBuzz list is wrong)."""


class _TestNameCalls(ast.NodeTransformer):
    """``test_f(x)`` -> ``f(x)`` when ``f`` is a function of the module: a 0.5B model's tests
    often call the test's name instead of the function under test (a NameError, or a
    recursive call of the test itself), whatever the module does."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id.startswith("test_") and func.id[5:] in self.names:
            node.func = ast.Name(id=func.id[5:], ctx=ast.Load())
        return node


def _calls_fixed(tests: str, names: list[str]) -> str:
    """``tests`` with calls of test names fixed (see ``_TestNameCalls``); unchanged when
    there were none (the text keeps its comments and layout)."""
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return tests
    wrong = {f"test_{n}" for n in names}
    if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in wrong
               for n in ast.walk(tree)):  # fmt: skip
        return tests
    return ast.unparse(_TestNameCalls(names).visit(tree)) + "\n"


def test_file(
    tests: str,
    module: str,
    names: list[str],
    stated: str = "",
    wrong: dict[str, str] | None = None,
    siblings: Collection[str] = (),
) -> tuple[str, str | None]:
    """A pytest file from the model's tests: imports the module's names, bare asserts wrapped
    in a test function, trailing calls dropped, asserts that cannot fail dropped (see
    ``vacuous``). ``stated`` (test functions holding the goal's own examples) comes first.
    ``siblings``: module names (no ``.py``) the tests may import besides the one under test —
    a project's modules that this one uses.
    Returns (text, error) — error when no test remains or the tests do not parse; with
    ``stated`` tests the file holds them even then."""
    tests = _calls_fixed(tests, names)
    try:
        tree = ast.parse(tests)
    except SyntaxError as err:
        if stated:
            return _assembled(module, names, [], [stated]), f"SyntaxError in the tests: {err.msg} (line {err.lineno})"
        return tests, f"SyntaxError in the tests: {err.msg} (line {err.lineno})"
    stem = module.removesuffix(".py")
    header: list[str] = []
    body: list[str] = []
    loose_nodes: list[ast.Assert] = []
    # A guessed expectation for a call the goal states a result for is right only if it is
    # that result: one that differs contradicts the spec and is dropped.
    given = _stated_results(stated)
    # ``wrong``: call -> repr of the value a bug report says is wrong; a test expecting it
    # checks that the bug is still there.
    reported = wrong or {}
    # What a test may use: the module's names, working imports, the file's own definitions.
    # A test that reads anything else fails with a NameError whatever the module does.
    known = {*names, stem}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == stem:
                continue  # re-added below, naming everything the module defines
            if _used(node, tree) and _importable(node, siblings):
                header.append(_segment(tests, node))
                known |= _bound_by(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            known.add(node.name)
        elif isinstance(node, ast.Assign):
            known |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if _is_test_def(node):
            plain = _only_asserts(node)
            if plain is not None and isinstance(node, ast.FunctionDef):
                sound = [a for a in plain
                         if not _unknown_names(a, known) and not vacuous(a, {*names, stem})
                         and not _contradicts(a, given) and not _expects_bug(a, reported)]
                sound = [cast(ast.Assert, float_tolerant(a)[0]) for a in checked_asserts(sound)]
                body.extend(_explode(node, sound[:MAX_ASSERTS]) if sound else [])
            elif not _unknown_names(node, known):
                def keep(a: ast.Assert, bound: set[str]) -> bool:
                    return (not vacuous(a, {*names, stem, *bound}) and not _contradicts(a, given)
                            and not _expects_bug(a, reported))

                split = _with_setup(node, keep) if isinstance(node, ast.FunctionDef) else None
                if split is not None:
                    body.extend(split)
                else:
                    fixed, changed = float_tolerant(node)
                    body.append(ast.unparse(fixed) if changed else _segment(tests, node))
        elif isinstance(node, ast.Assert):
            if (not _unknown_names(node, known) and not vacuous(node, {*names, stem})
                    and not _contradicts(node, given) and not _expects_bug(node, reported)):
                loose_nodes.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name not in names:  # a copy of the function under test would shadow it
                body.append(_segment(tests, node))  # helpers and fixtures
        elif isinstance(node, ast.Assign) and not _binds(node, set(names)):
            body.append(_segment(tests, node))
        # anything else (calls, prints, main guards) is dropped: pytest runs the tests
    if loose_nodes:
        body.extend(
            f"def test_example_{i}():\n    {ast.unparse(float_tolerant(a)[0])}"
            for i, a in enumerate(checked_asserts(loose_nodes), 1)
        )
    if not any(line.startswith(("def test", "class Test")) for line in body):
        error = "the tests define no test function and no assert that can fail"
        return (_assembled(module, names, header, [stated]) if stated else tests), error
    return _assembled(module, names, header, [stated, *body] if stated else body), None


def _stated_results(stated: str) -> dict[str, str]:
    """Call -> expected value of each stated example's assert (``pytest.approx(v)`` -> ``v``)."""
    try:
        tree = ast.parse(stated)
    except SyntaxError:
        return {}
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and (key := assert_key(node)) is not None:
            found[key[0]] = key[1].removeprefix("pytest.approx(").removesuffix(")")
    return found


def _expects_bug(node: ast.Assert, wrong: dict[str, str]) -> bool:
    """Whether ``node`` expects, for a reported call, the value the report says is wrong
    (``wrong`` holds ``repr``s of values)."""
    key = assert_key(node)
    return key is not None and key[0] in wrong and _literal(key[1], repr) == wrong[key[0]]


def _contradicts(node: ast.Assert, given: dict[str, str]) -> bool:
    """Whether ``node`` expects, for a stated call, another value than the one stated."""
    key = assert_key(node)
    return key is not None and key[0] in given and _literal(key[1]) != _literal(given[key[0]])


def _literal(text: str, show: Any = None) -> Any:
    """The value of the literal ``text`` (passed through ``show``), or the text itself when it
    is not a literal."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return show(value) if show is not None else value


def _assembled(module: str, names: list[str], header: list[str], body: list[str]) -> str:
    stem = module.removesuffix(".py")
    imports = [f"from {stem} import {', '.join(names)}"] if names else [f"import {stem}"]
    text = "\n\n\n".join(body)
    if names and re.search(rf"(?<![\w.]){re.escape(stem)}\.", text):
        if stem in names:  # ``import is_prime`` would rebind the imported function to its module
            text = re.sub(rf"(?<![\w.]){re.escape(stem)}\.(?=[A-Za-z_])", "", text)
        else:
            imports.append(f"import {stem}")  # tests that call ``leap.is_leap(…)`` need the module too
    if "pytest." in text and not any(h.strip() == "import pytest" for h in header):
        header = ["import pytest", *header]
    return "\n".join([*imports, *header]) + "\n\n\n" + text + "\n"


def count_tests(text: str) -> int:
    """Test functions in a test file (for the summary when pytest's line is missing)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return 0
    return sum(
        1 for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")
    )


PYTEST_SUMMARY = re.compile(
    r"^=*\s*(\d+ (?:passed|failed|error)[^\n=]*?)\s*(?:in [\d.]+s)?\s*=*$", re.M
)


def pytest_summary(output: str) -> str:
    """pytest's last summary line (``3 passed``, ``1 failed, 2 passed``), or ''."""
    found = PYTEST_SUMMARY.findall(output)
    return found[-1].strip().rstrip(",") if found else ""


def failure_excerpt(output: str, limit: int = 1500) -> str:
    """The part of pytest's output a repair needs: the failures section and short summary."""
    start = output.find("= FAILURES =")
    if start < 0:
        start = output.find("= ERRORS =")
    text = output[start:] if start >= 0 else output
    if len(text) > limit:
        text = text[: limit // 2] + "\n…\n" + text[-limit // 2 :]
    return text.strip()


def failed_checks(output: str, limit: int = 6) -> list[str]:
    """The failing asserts of a pytest run with what pytest said about them, one line each
    (``assert f('x') == True  -> AssertionError: assert False == True``)."""
    checks: list[str] = []
    current = ""
    for line in output.splitlines():
        if line.startswith(">"):
            current = line[1:].strip()
        elif line.startswith("E ") and current:
            checks.append(f"{current}  -> {line[1:].strip()}")
            current = ""
        elif line.startswith("E ") and not current and not checks:
            checks.append(line[1:].strip())  # an import or syntax error
    return list(dict.fromkeys(checks))[:limit]
