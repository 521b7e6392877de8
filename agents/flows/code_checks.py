"""Evidence for a coder's repair: what each failing check's call actually returned, under the
module and under an independent second implementation (pure functions, no model, no I/O).

A 0.5B model's own tests are wrong about as often as its module is. Which side to repair is
decided from evidence, not a fixed order: two independent implementations that return the
same value for a call, against the test's expectation, point at the test (CodeT's dual
agreement); a second implementation that passes the check points at the module. The values
are shown to the model that repairs; code never writes them into a test itself.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass

from agents.flows.code_spec import is_stated
from agents.flows.code_text import SETUP_STATEMENTS, assert_key

STATED_NOTE = "an example the task itself states"
PROBE_MARK = "CODER-PROBE "
VALUE_CHARS = 240


@dataclass(frozen=True)
class Check:
    """One test function of a test file that holds a single assert on a call."""

    test: str
    """The test function's name (pytest's node name in the file)."""
    source: str
    """The assert, as code."""
    call: str
    """The call the assert checks (``chunk([1, 2], 1)``)."""
    expected: str
    """What the assert expects of it, as code (``[[1], [2]]``; ``True`` for ``assert f(x)``)."""
    setup: str = ""
    """The statements before the assert (``inv = Inventory()``, ``inv.add('a', 2)``), run
    before the call is probed; empty for a test that is the assert alone."""


def same_code(a: str, b: str) -> bool:
    """Whether two modules are the same code, docstrings, comments and layout aside."""

    def shape(code: str) -> str:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return code.strip()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
            ):  # fmt: skip
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return ast.dump(tree)

    return shape(a) == shape(b)


def checks_of(test_code: str) -> list[Check]:
    """The single-assert test functions of a test file (what ``code_text.test_file`` makes of
    plain asserts and of tests that set up state first), in order; other tests
    (``pytest.raises`` blocks, loops, several asserts) are not probed."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return []
    found = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test")) or not node.body:
            continue
        *setup, last = node.body
        if not isinstance(last, ast.Assert) or not all(isinstance(s, SETUP_STATEMENTS) for s in setup):
            continue
        pair = assert_key(last)
        if pair is not None:
            code = "\n".join(ast.unparse(s) for s in setup)
            found.append(Check(node.name, ast.unparse(last), *pair, setup=code))
    return found


def probe_script(test_file: str, checks: list[Check]) -> str:
    """A script that loads ``test_file`` (so its imports and helpers exist), evaluates each
    check's call and its assert, and prints ``{test: [value, passed]}`` after ``PROBE_MARK``.

    A call that raises gives ``raises <Error>``. Dicts and sets are shown sorted, so two
    implementations that build the same dict in another order agree."""
    rows = [[c.test, c.setup, c.call, _condition(c.source)] for c in checks]
    return (
        "import json, sys\n"
        "sys.path.insert(0, '.')\n"
        "ns = {'__name__': 'coder_probe'}\n"
        f"exec(compile(open({test_file!r}).read(), {test_file!r}, 'exec'), ns)\n"
        "def shown(v):\n"
        "    try:\n"
        "        if isinstance(v, dict):\n"
        "            return '{' + ', '.join(f'{k!r}: {v[k]!r}' for k in sorted(v)) + '}'\n"
        "        if isinstance(v, (set, frozenset)):\n"
        "            return '{' + ', '.join(repr(x) for x in sorted(v)) + '}'\n"
        "    except TypeError:\n"
        "        pass\n"
        "    return repr(v)\n"
        "out = {}\n"
        # Each evaluation gets its own namespace with the test's setup run afresh: a call
        # with a side effect (``stack.pop()``) is not made twice on the same object.
        "def fresh(setup):\n"
        "    local = dict(ns)\n"
        "    exec(setup, local)\n"
        "    return local\n"
        f"for name, setup, call, test in {rows!r}:\n"
        "    try:\n"
        "        value = shown(eval(call, fresh(setup)))\n"
        "    except BaseException as err:\n"
        "        value = 'raises ' + type(err).__name__\n"
        "    try:\n"
        "        ok = bool(eval(test, fresh(setup)))\n"
        "    except BaseException:\n"
        "        ok = False\n"
        f"    out[name] = [value[:{VALUE_CHARS}], ok]\n"
        f"print({PROBE_MARK!r} + json.dumps(out))\n"
    )


def _condition(source: str) -> str:
    """The condition an assert checks, without its message (``assert x == 1, 'msg'`` ->
    ``x == 1``: evaluated with the message it is a tuple, always true)."""
    node = ast.parse(source).body[0]
    return ast.unparse(node.test) if isinstance(node, ast.Assert) else source.removeprefix("assert ")


def probe_results(output: str) -> dict[str, tuple[str, bool]]:
    """What ``probe_script`` printed: test name -> (value shown, whether the assert held)."""
    for line in reversed(output.splitlines()):
        if line.startswith(PROBE_MARK):
            try:
                data = json.loads(line[len(PROBE_MARK) :])
            except json.JSONDecodeError:
                return {}
            return {str(k): (str(v[0]), bool(v[1])) for k, v in data.items()}
    return {}


@dataclass(frozen=True)
class Verdict:
    """Which side a failing check points at, and the line the repairing model is shown."""

    check: Check
    value: str
    """What the module returned (``raises X`` when it raised)."""
    side: str
    """``tests`` (the other implementation returns the same value), ``module`` (the other
    implementation passes the check), ``stated`` (the task states this example: the module
    is wrong, whatever any implementation returns) or ``unknown``."""

    def line(self) -> str:
        text = f"{self.check.source}  -> but {self.check.call} returns {self.value}"
        if self.check.setup:
            text = f"after `{'; '.join(self.check.setup.splitlines())}`: {text}"
        if self.side == "stated":
            return f"{text} ({STATED_NOTE})"
        if self.side == "tests":
            return text + " (a second, independently sampled implementation returns the same)"
        if self.side == "module":
            return text + " (an independent second implementation passes this check)"
        return text


def verdicts(
    failing: list[Check],
    module: dict[str, tuple[str, bool]],
    other: dict[str, tuple[str, bool]] | None,
) -> list[Verdict]:
    """One verdict per failing check the module's probe saw fail."""
    out = []
    for check in failing:
        value, ok = module.get(check.test, ("?", False))
        if ok:
            continue  # the probe saw it pass: pytest failed it for another reason
        side = "unknown"
        if is_stated(check.test):
            side = "stated"  # never disputed: the goal's own example is the spec
        elif other is not None and check.test in other:
            other_value, other_ok = other[check.test]
            if other_ok:
                side = "module"
            elif other_value == value:
                side = "tests"
        out.append(Verdict(check, value, side))
    return out


def test_names(test_code: str) -> list[str]:
    """The test functions of a test file, in order (``[]`` when it does not parse)."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")]


def failed_tests(output: str) -> list[str]:
    """The test functions pytest reported as failed (``FAILED test_x.py::test_y - …``)."""
    names = []
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")) and "::" in line:
            names.append(line.split("::", 1)[1].split(" ", 1)[0])
    return list(dict.fromkeys(names))


def disputed_marked(test_code: str, reasons: dict[str, str]) -> str:
    """``test_code`` with each test named in ``reasons`` marked ``xfail`` with its reason:
    the assert stays in the file as written and pytest reports it (``1 xfailed``), so a
    disputed expectation is neither deleted nor silently counted as passed."""
    tree = ast.parse(test_code)
    lines = test_code.splitlines()
    for node in reversed(tree.body):  # bottom-up: line numbers above stay valid
        if isinstance(node, ast.FunctionDef) and node.name in reasons:
            line = f"@pytest.mark.xfail(reason={reasons[node.name]!r}, strict=False)"
            lines.insert(node.lineno - 1, line)
    text = "\n".join(lines) + "\n"
    imported = any(isinstance(n, ast.Import) and any(a.name == "pytest" for a in n.names)
                   for n in tree.body)  # fmt: skip
    return text if imported else "import pytest\n" + text
