"""What a goal states about the code it asks for, read from its structure, and the checks
that hold a written module to it (pure functions, no model, no I/O).

A goal states an interface in a few structural forms: a signature in backticks or written
as code (```slugify(text)```, ``def area(w, h):``), a file name (``shapes.py``), a fenced
block or an inline ``def`` holding code to start from, and examples of calls with their
results (``f(3) -> 6``, ``>>> f(3)`` above ``6``, ```` `f(3)` gives `6` ````). These are
read by parsing, never from lists of words, and become rules code enforces: the module
defines every asked name with the asked parameters, and the stated examples are the first
tests, whose expectations are never set aside.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

from agents.flows.code_text import FENCE, PY_FILE, salvage

_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\(")
"""A name directly followed by ``(``: a signature or a call (``slugify(``, ``Stack.push(``)."""
_TICKS = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DEF = re.compile(r"(?m)(?:^|(?<=\s))(?:async\s+)?(?:def|class)\s+[A-Za-z_]\w*\s*[(:]")
_DOCTEST = re.compile(r"(?m)^[ \t]*>>>[ \t]*(.+)\n[ \t]*(?!>>>)(\S.*)$")
_ARROW = re.compile(r"\s*(?:==>|=>|->|→|➞|==|=(?!=))\s*")
"""What joins a call to its stated result: arrows, ``==``, and ``=`` outside the parens."""
_CONNECTOR = re.compile(r"\s+(?:[A-Za-z]+\s+){0,3}?`([^`\n]+)`")
"""Up to three plain words between a backticked call and a backticked result."""
_OPERATOR = frozenset("+-*/%=<>")
"""A character that, right after a stated value, makes it part of an expression."""
_BUILTINS = frozenset(dir(builtins))
_PLURAL = frozenset({"s", "es"})
"""``file(s)``: a word's optional plural in parentheses, not a parameter."""


@dataclass(frozen=True)
class Signature:
    """A function or method the goal asks for, with its parameters."""

    name: str
    params: tuple[str, ...]
    """Parameter names in order (``*args``/``**kw`` with their stars; ``self`` left out)."""
    owner: str = ""
    """The class a method belongs to (``Stack`` for ``Stack.push(item)``), else ``""``."""

    def text(self) -> str:
        head = f"{self.owner}.{self.name}" if self.owner else self.name
        return f"{head}({', '.join(self.params)})"


@dataclass(frozen=True)
class Example:
    """A call and the result the goal states for it, both Python expressions."""

    call: str
    expected: str


@dataclass
class CodeSpec:
    """Everything a goal states about the module: file, names, signatures, examples, code."""

    file: str = ""
    """The module's file name when the goal names one (``shapes.py``)."""
    files: list[str] = field(default_factory=list)
    """Every non-test ``.py`` file the goal names, in order."""
    signatures: list[Signature] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    """Classes the goal asks for (a ``class`` in its code, the owner of an asked method)."""
    examples: list[Example] = field(default_factory=list)
    given_code: str = ""
    """Code the goal gives to start from (a fenced block or an inline ``def``), else ``""``."""
    mentioned: list[str] = field(default_factory=list)
    """Calls of the given code's functions on literal arguments that the prose mentions
    (``last(['a'])`` in "last(['a']) raises IndexError"): in a bug report, what it reports."""

    @property
    def names(self) -> list[str]:
        """Top-level names the module must define: functions (not methods) and classes."""
        out = [s.name for s in self.signatures if not s.owner] + self.classes
        return list(dict.fromkeys(out))

    def merged(self, other: CodeSpec) -> CodeSpec:
        """This spec with what ``other`` adds; this one wins where both state a name."""
        have = {(s.owner, s.name) for s in self.signatures}
        return CodeSpec(
            file=self.file or other.file,
            files=list(dict.fromkeys([*self.files, *other.files])),
            signatures=[*self.signatures, *(s for s in other.signatures if (s.owner, s.name) not in have)],
            classes=list(dict.fromkeys([*self.classes, *other.classes])),
            examples=list(dict.fromkeys([*self.examples, *other.examples])),
            given_code=self.given_code or other.given_code,
            mentioned=self.mentioned if self.given_code else other.mentioned,
        )


# -- reading a goal -----------------------------------------------------------------------------


def _params(args: ast.arguments, method: bool) -> tuple[str, ...]:
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    if method and names and names[0] in ("self", "cls"):
        names = names[1:]
    if args.vararg:
        names.append(f"*{args.vararg.arg}")
    names += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        names.append(f"**{args.kwarg.arg}")
    return tuple(names)


def _defs(tree: ast.Module) -> tuple[list[Signature], list[str]]:
    sigs: list[Signature] = []
    classes: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            if not node.name.startswith("test"):
                sigs.append(Signature(node.name, _params(node.args, False)))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith(("_", "Test")):
            classes.append(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    sigs.append(Signature(item.name, _params(item.args, True), node.name))
    return sigs, classes


def _closing(text: str, start: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``start - 1``, or -1."""
    depth = 1
    for i in range(start, min(len(text), start + 400)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _signature(name: str, inside: str, prose: bool) -> Signature | None:
    """``name(inside)`` as a signature when every argument is a parameter (a name, maybe
    annotated or defaulted); a call with values (``f(3)``) is not one."""
    if prose and inside.strip() in _PLURAL:
        return None
    try:
        tree = ast.parse(f"def _f({inside}): pass")
    except SyntaxError:
        return None
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    owner, _, short = name.rpartition(".")
    if owner and not owner[:1].isupper():
        return None  # ``os.path(...)``, ``self.x(...)``: not a method of an asked class
    return Signature(short, _params(func.args, bool(owner)), owner)


def _literal(text: str) -> str | None:
    """The longest prefix of ``text`` that is a Python literal (``[1, 2]``, ``'a'``, ``-3``,
    ``True``), without a sentence's closing full stop; None when there is none."""
    text = text.strip()
    for end in range(min(len(text), 300), 0, -1):
        head = text[:end].strip()
        if not head or head[-1] in ",;:":
            continue
        try:
            ast.literal_eval(head)
            bare_tuple = isinstance(ast.parse(head, mode="eval").body, ast.Tuple) and head[0] != "("
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if bare_tuple:
            continue  # ``-> 3, f(2) -> 4``: the comma ends the value, it builds no tuple
        after = text[end:]
        if after.strip() and after.lstrip()[0] in _OPERATOR:
            return None  # ``-> 19 - 5 - 6 = 8``: a sum being worked out, not the result
        if after and (after[0].isalnum() or after[0] in "'\"_[("):
            return None  # ``== ""abc"``: the value goes on past the literal (a typo, an index)
        if head.startswith("(") and not isinstance(ast.literal_eval(head), tuple):
            return None  # ``("a")``: a one-item tuple without its comma, or brackets: unsure
        if head.endswith(".") and head[:-1] and _is_literal(head[:-1]):
            head = head[:-1]  # ``-> 6.`` ends a sentence
        return head
    return None


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _example_call(call: str) -> str | None:
    """``call`` when it is a call of a plain name on literal arguments (``f(3, 'a')``)."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (node.args or node.keywords)):
        return None
    values = [*node.args, *(k.value for k in node.keywords)]
    if any(isinstance(v, ast.Starred) or not _is_literal(ast.unparse(v)) for v in values):
        return None
    return ast.unparse(node)


def _inline_code(text: str) -> list[tuple[str, int, int]]:
    """Code written in the prose, not fenced: each ``def``/``class`` with the indented lines
    under it, cut back to what parses, with where it stands in ``text``."""
    found: list[tuple[str, int, int]] = []
    for match in _DEF.finditer(text):
        if found and match.start() < found[-1][2]:
            continue  # a def inside the block found last (a method, a nested function)
        lines = text[match.start() :].splitlines(keepends=True)
        block = [lines[0]]
        for line in lines[1:]:
            if line.strip() and not line[:1].isspace():
                break
            block.append(line)
        code = salvage("".join(block).rstrip() + "\n")
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        if tree.body and isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((code, match.start(), match.start() + len("".join(block))))
    return found


def _examples(text: str, prose: str) -> list[Example]:
    """Doctests anywhere in ``text``; calls joined to a result in ``prose`` (the goal's text
    without the code it gives, whose own comparisons are the code's, not the goal's)."""
    found: list[Example] = []
    for call, result in _DOCTEST.findall(text):
        call_code, value = _example_call(call), _literal(result)
        if call_code and value is not None:
            found.append(Example(call_code, value))
    for match in _CALL.finditer(prose):
        end = _closing(prose, match.end())
        if end < 0:
            continue
        call_code = _example_call(prose[match.start() : end + 1])
        if call_code is None:
            continue
        rest = prose[end + 1 :]
        if rest.startswith("`"):  # `f(3)` gives `6`
            joined = _CONNECTOR.match(rest[1:])
            value = _literal(joined.group(1)) if joined else None
            if value is not None:
                found.append(Example(call_code, value))
                continue
            rest = rest[1:]
        arrow = _ARROW.match(rest)
        if arrow:
            after = rest[arrow.end() :].lstrip("`")
            value = _literal(after.split("`")[0].splitlines()[0] if after else "")
            if value is not None:
                found.append(Example(call_code, value))
    unique = list(dict.fromkeys(found))
    # One call stated with two results is a contradiction (or notation, ``tri(4) = 3`` in a
    # recurrence): neither can be a test that is never set aside.
    results: dict[str, set[str]] = {}
    for example in unique:
        results.setdefault(example.call, set()).add(example.expected)
    return [e for e in unique if len(results[e.call]) == 1]


def spec_of(text: str) -> CodeSpec:
    """What ``text`` (a goal or a task) states about the module it asks for."""
    spec = CodeSpec()
    spec.files = list(dict.fromkeys(
        f"{m.group(1)}.py" for m in PY_FILE.finditer(text) if not m.group(1).startswith("test")
    ))  # fmt: skip
    spec.file = spec.files[0] if spec.files else ""
    blocks = [b for b in FENCE.findall(text) if b.strip()]
    prose = FENCE.sub("\n", text)
    inline = _inline_code(prose)
    for _, start, end in reversed(inline):  # names called inside given code are not asked
        prose = prose[:start] + "\n" + prose[end:]
    code_parts: list[str] = []
    for block in [*blocks, *(code for code, _, _ in inline)]:
        try:
            tree = ast.parse(salvage(block))
        except SyntaxError:
            continue
        sigs, classes = _defs(tree)
        if sigs or classes:
            code_parts.append(salvage(block).strip("\n"))
        spec.signatures += [d for d in sigs if d not in spec.signatures]
        spec.classes += [c for c in classes if c not in spec.classes]
    spec.given_code = "\n\n\n".join(code_parts) + "\n" if code_parts else ""
    have = {(s.owner, s.name) for s in spec.signatures}
    ticked = {t.strip() for t in _TICKS.findall(prose)}
    for match in _CALL.finditer(prose):
        end = _closing(prose, match.end())
        if end < 0:
            continue
        whole = prose[match.start() : end + 1]
        in_ticks = any(t.startswith(whole) for t in ticked)
        sig = _signature(match.group(1), prose[match.end() : end], prose=not in_ticks)
        if sig is None or (sig.owner, sig.name) in have or sig.name in _BUILTINS:
            continue  # ``len(s)`` in a sentence refers to Python, it asks for nothing
        if _example_call(whole) is not None:
            continue
        have.add((sig.owner, sig.name))
        spec.signatures.append(sig)
        if sig.owner and sig.owner not in spec.classes:
            spec.classes.append(sig.owner)
    given_names = {sig.name for part in code_parts for sig in _defs(ast.parse(part))[0] if not sig.owner}
    for match in _CALL.finditer(prose):
        end = _closing(prose, match.end())
        call = _example_call(prose[match.start() : end + 1]) if end >= 0 else None
        if call is not None and match.group(1) in given_names and call not in spec.mentioned:
            spec.mentioned.append(call)
    usage = "\n".join(b for b in blocks if salvage(b).strip("\n") not in code_parts)
    # The given code's docstrings are the goal's words too: examples written there
    # (``f([1, 2]) => 3``) state what the code should do; its statements do not.
    docs = "\n".join(_docstrings(part) for part in code_parts)
    spec.examples = [e for e in _examples(text, f"{prose}\n{usage}\n{docs}") if _called(e) in {s.name for s in spec.signatures if not s.owner}]
    return spec


def _docstrings(code: str) -> str:
    """Every docstring of ``code`` (module, classes, functions), one after another."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    nodes = [tree, *(n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return "\n".join(doc for n in nodes if (doc := ast.get_docstring(n)))


def _called(example: Example) -> str:
    node = ast.parse(example.call, mode="eval").body
    return node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else ""


# -- one module of a project plan -----------------------------------------------------------------

MODULE_HEAD = "Write {file}: one module of a project; other tasks write its other modules."
DEFINES = "It must define exactly these, with these parameters:"
USES = "It imports these from modules of the project written before it (do not redefine them):"
PROJECT = "The whole project, for context only:"
_MODULE_HEAD = re.compile(r"\AWrite ([A-Za-z_]\w*\.py): one module of a project")


@dataclass(frozen=True)
class ModuleBrief:
    """One module of a project plan, as its coder task states it (the planner writes it with
    :func:`module_instruction`, the coder reads it back with :func:`module_brief`)."""

    file: str
    """The module's file name."""
    defines: tuple[str, ...]
    """What it defines: ``class Name``, ``name(params) -> type`` or ``Name.method(params)``."""
    purpose: str = ""
    """One sentence on what the module is for."""
    uses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Modules written before it that it imports: (file, what that file defines)."""


def module_instruction(brief: ModuleBrief, goal: str) -> str:
    """The instruction of a project module's coder task."""
    lines = [MODULE_HEAD.format(file=brief.file)]
    if brief.purpose.strip():
        lines.append(f"Purpose: {brief.purpose.strip()}")
    lines += ["", DEFINES, *(f"- {d}" for d in brief.defines)]
    if brief.uses:
        lines += ["", USES]
        lines += [f"- from {f.removesuffix('.py')}: {'; '.join(ds)}" for f, ds in brief.uses]
    lines += ["", PROJECT, goal.strip()]
    return "\n".join(lines)


def module_brief(instruction: str) -> ModuleBrief | None:
    """The brief of a project module's task (None for any other task)."""
    head = _MODULE_HEAD.match(instruction.strip())
    if head is None or DEFINES not in instruction:
        return None
    body = instruction.split(PROJECT, 1)[0]
    defines_part, _, uses_part = body.split(DEFINES, 1)[1].partition(USES)
    purpose = next((line.removeprefix("Purpose:").strip() for line in body.splitlines()
                    if line.startswith("Purpose:")), "")  # fmt: skip
    defines = tuple(line[2:].strip() for line in defines_part.splitlines() if line.startswith("- "))
    uses = []
    for line in uses_part.splitlines():
        if line.startswith("- from ") and ":" in line:
            stem, _, names = line[len("- from "):].partition(":")
            uses.append((f"{stem.strip()}.py", tuple(n.strip() for n in names.split(";") if n.strip())))
    return ModuleBrief(head.group(1), defines, purpose, tuple(uses))


def parse_define(text: str) -> Signature | str | None:
    """One ``defines`` entry: a class name (``class Shape``), a :class:`Signature`
    (``area(w, h) -> float``, ``Shape.scale(factor)``), or None when it is neither."""
    text = text.strip().rstrip(":")
    cls = re.fullmatch(r"class\s+([A-Za-z_]\w*)(?:\s*\(.*\))?", text)
    if cls:
        return cls.group(1)
    match = _CALL.match(text)
    if match is None or match.start() != 0:
        return None
    end = _closing(text, match.end())
    if end < 0 or (text[end + 1 :].strip() and not text[end + 1 :].strip().startswith("->")):
        return None
    return _signature(match.group(1), text[match.end() : end], prose=False)


def brief_spec(brief: ModuleBrief, goal: str) -> CodeSpec:
    """The spec of a project module: its brief's names; the goal's stated examples of them."""
    spec = CodeSpec(file=brief.file, files=[brief.file])
    for entry in brief.defines:
        parsed = parse_define(entry)
        if isinstance(parsed, str):
            if parsed not in spec.classes:
                spec.classes.append(parsed)
        elif parsed is not None and parsed not in spec.signatures:
            spec.signatures.append(parsed)
            if parsed.owner and parsed.owner not in spec.classes:
                spec.classes.append(parsed.owner)
    mine = {s.name for s in spec.signatures if not s.owner}
    spec.examples = [e for e in spec_of(goal).examples if _called(e) in mine]
    return spec


def task_spec(instruction: str, goal: str) -> CodeSpec:
    """The spec a coder task works to: its own text's, and the goal's when the goal is about
    one module (a goal naming several files was split by the planner; each task names its
    own part). A project module's task states its interface as a brief."""
    brief = module_brief(instruction)
    if brief is not None:
        return brief_spec(brief, goal)
    own = spec_of(instruction)
    if not goal.strip() or goal.strip() == instruction.strip():
        return own
    whole = spec_of(goal)
    if len(whole.files) > 1:
        return own
    return own.merged(whole)


# -- holding a module to it ---------------------------------------------------------------------


def problems(module_code: str, spec: CodeSpec) -> list[str]:
    """How ``module_code`` differs from what ``spec`` asks: missing names, other parameters."""
    try:
        tree = ast.parse(module_code)
    except SyntaxError as err:
        return [f"SyntaxError: {err.msg} (line {err.lineno})"]
    sigs, classes = _defs(tree)
    have = {(s.owner, s.name): s for s in sigs}
    found = []
    for cls in spec.classes:
        if cls not in classes:
            found.append(f"it does not define the class {cls}")
    for want in spec.signatures:
        got = have.get((want.owner, want.name))
        if got is None and not want.owner and want.name in classes:
            # ``Stack(capacity)``: a class called as its constructor
            got = have.get((want.name, "__init__"), code_spec_init(want.name))
            got = Signature(want.name, got.params, "")
        if got is None and not want.owner:
            # "a class Stock: add(name, qty)" reads as a function add; a method satisfies it.
            got = next((s for s in sigs if s.owner and s.name == want.name), None)
        if got is None:
            if not want.owner or want.owner in classes:
                found.append(f"it does not define {want.text()}")
        elif want.params != got.params and not (want.name == "__init__" and not want.params):
            found.append(f"{got.text()} must take exactly these parameters: {want.text()}")
    return found


def brief_problems(module_code: str, brief: ModuleBrief, goal: str) -> list[str]:
    """How a project module differs from its brief: :func:`problems`, and a name it must
    import from a module written before it that it defines again (its own copy would drift
    from the imported one, and the modules would no longer work together)."""
    found = problems(module_code, brief_spec(brief, goal))
    if found and found[0].startswith("SyntaxError"):
        return found
    sigs, classes = _defs(ast.parse(module_code))
    own = {s.name for s in sigs if not s.owner} | set(classes)
    for file, entries in brief.uses:
        for entry in entries:
            parsed = parse_define(entry)
            name = parsed if isinstance(parsed, str) else parsed.name if parsed and not parsed.owner else None
            if name in own:
                found.append(f"it defines {name} again: import it from {file.removesuffix('.py')} instead")
    return found


def code_spec_init(cls: str) -> Signature:
    """The constructor a class without ``__init__`` has: no parameters."""
    return Signature("__init__", (), cls)


STATED_PREFIX = "test_stated_"
"""Test functions holding a goal's stated examples: their expectations are never disputed."""


def stated_tests(spec: CodeSpec, defined: list[str]) -> str:
    """One test function per stated example of a name the module defines (floats compared
    with ``pytest.approx``); ``""`` when there is none."""
    body = []
    for i, ex in enumerate((e for e in spec.examples if _called(e) in defined), 1):
        value = ast.literal_eval(ex.expected)
        if isinstance(value, float):
            check = f"{ex.call} == pytest.approx({ex.expected})"
        elif isinstance(value, bool) or value is None:
            check = f"{ex.call} is {ex.expected}"
        else:
            check = f"{ex.call} == {ex.expected}"
        body.append(f"def {STATED_PREFIX}{i}():\n    assert {check}")
    return "\n\n\n".join(body)


def is_stated(test_name: str) -> bool:
    return test_name.startswith(STATED_PREFIX)


def brief(spec: CodeSpec) -> list[str]:
    """The asked classes and signatures as lines for a prompt (``class Stack``,
    ``Stack.push(item)``, ``scale(values, factor)``)."""
    return [f"class {c}" for c in spec.classes] + [s.text() for s in spec.signatures]
