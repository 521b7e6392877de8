"""What a goal states about its code, read from structure (agents/flows/code_spec.py), and the
checks that hold a module to it: pure functions, no model."""

from __future__ import annotations

import ast

from agents.flows import code_spec, code_text
from agents.flows.code_spec import Example, Signature, problems, spec_of, stated_tests
from agents.flows.coder import FIX_MODULE_SYSTEM, MODULE_SYSTEM, TESTS_SYSTEM


def test_a_backticked_signature_file_and_stated_result_are_read() -> None:
    spec = spec_of(
        "Please add `tokenize(line, sep=',')` to lexer.py; `tokenize('a,b')` gives `['a', 'b']` "
        "and tokenize('') -> []."
    )
    assert spec.file == "lexer.py"
    assert spec.signatures == [Signature("tokenize", ("line", "sep"))]
    assert spec.examples == [Example("tokenize('a,b')", "['a', 'b']"), Example("tokenize('')", "[]")]


def test_examples_in_the_given_stubs_docstring_are_stated_examples() -> None:
    """A stub's docstring is the goal's words: its examples, in any arrow form, are tests;
    a worked sum, a typo'd value, an ambiguous one-item tuple and a call stated with two
    results are not."""
    goal = (
        "Write evens.py with the function below, following its docstring.\n\n"
        "def evens(xs, limit):\n"
        '    """Keep the even numbers of xs up to limit.\n\n'
        "    Examples:\n"
        "        evens([1, 2, 4], 9) => [2, 4]\n"
        "        evens([], 3) ➞ []\n"
        "        evens([6], 5) == []\n"
        "        evens([2, 2], 9) = 2 + 2 = 4\n"
        '        evens([8], 9) == ""[8]"\n'
        '        evens([3], 1) ==> ("none")\n'
        "        evens([0], 1) = [0]\n"
        "        evens([0], 1) = 0\n"
        '    """\n'
        "    if limit > 100: return []\n"
    )
    spec = spec_of(goal)
    assert spec.examples == [Example("evens([1, 2, 4], 9)", "[2, 4]"), Example("evens([], 3)", "[]"),
                             Example("evens([6], 5)", "[]")]  # fmt: skip


def test_prose_references_are_not_asked_names() -> None:
    # A plural in parentheses and a builtin named in a sentence ask for nothing.
    spec = spec_of("Count the word(s) in each line(s) with len(x) and write count_words(text).")
    assert [s.name for s in spec.signatures] == ["count_words"]


def test_an_inline_def_is_the_starting_code_and_its_calls_are_not_asked() -> None:
    goal = (
        "My helper is wrong, it drops the last item: def window(xs, n):\n"
        "    return [xs[i:i + n] for i in range(len(xs) - n)]\n"
        "window([1, 2, 3], 2) should be [[1, 2], [2, 3]], i.e. window([1, 2, 3], 2) == [[1, 2], [2, 3]]."
    )
    spec = spec_of(goal)
    assert spec.signatures == [Signature("window", ("xs", "n"))]
    assert spec.given_code.startswith("def window(xs, n):\n    return [xs[i:i + n]")
    assert spec.examples == [Example("window([1, 2, 3], 2)", "[[1, 2], [2, 3]]")]


def test_a_fenced_stub_gives_names_and_its_doctests_give_examples() -> None:
    goal = (
        "Complete this:\n```python\nclass Ledger:\n    def add(self, amount: float) -> None:\n"
        "        ...\n\n\ndef total_of(items: list[float]) -> float:\n"
        '    """Sum.\n\n    >>> total_of([0.5, 0.25])\n    0.75\n    """\n```\n'
    )
    spec = spec_of(goal)
    assert spec.classes == ["Ledger"]
    assert Signature("add", ("amount",), "Ledger") in spec.signatures
    assert spec.names == ["total_of", "Ledger"]
    tests = stated_tests(spec, ["total_of", "Ledger"])
    assert "assert total_of([0.5, 0.25]) == pytest.approx(0.75)" in tests


def test_a_method_named_on_its_class_asks_for_the_class() -> None:
    spec = spec_of("Write a queue: Queue.put(item) and Queue.get() in q.py.")
    assert spec.classes == ["Queue"] and spec.names == ["Queue"]
    assert problems("class Queue:\n    def put(self, item):\n        pass\n", spec) == [
        "it does not define Queue.get()"
    ]


def test_a_module_missing_a_name_or_with_other_parameters_has_problems() -> None:
    spec = spec_of("Write `slugify(text)` and `unslug(slug, sep='-')`.")
    assert problems("def slugify(text):\n    return text\n", spec) == [
        "it does not define unslug(slug, sep)"
    ]
    assert problems("def slugify(s):\n    return s\ndef unslug(slug, sep='-'):\n    return slug\n", spec) == [
        "slugify(s) must take exactly these parameters: slugify(text)"
    ]
    assert problems("def slugify(text):\n    return text\ndef unslug(slug, sep='-'):\n    return slug\n", spec) == []


def test_the_goal_speaks_for_a_task_about_one_module_only() -> None:
    one = code_spec.task_spec("Implement the function.", "Write `area(w, h)` in geo.py.")
    assert one.names == ["area"] and one.file == "geo.py"
    # A goal naming two files was split by the planner: each task keeps its own part.
    two = code_spec.task_spec("Write `area(w, h)` in geo.py.", "Write `area(w, h)` in geo.py and `report(items)` in report.py.")
    assert two.names == ["area"]


def test_a_reply_cut_inside_a_definition_is_told_apart_from_a_dropped_example() -> None:
    cut = "```python\ndef f(xs):\n    total = 0\n    for x in xs:\n        total +=\n"
    assert code_text.cut_inside(cut, hit_cap=True) == "f"
    # Still parses, but it reached the cap inside f: no return yet.
    assert code_text.cut_inside("```python\ndef f(xs):\n    for x in xs:\n        pass\n", hit_cap=True) == "f"
    # Only a trailing example call was lost: the function is whole.
    whole = "```python\ndef f(xs):\n    return 1\n\nprint(f(\n"
    assert code_text.cut_inside(whole, hit_cap=True) is None
    assert code_text.cut_inside("```python\ndef f(xs):\n    return 1\n```", hit_cap=False) is None


def test_checks_that_cannot_fail_are_no_tests() -> None:
    weak = (
        "def test_f():\n    assert callable(f)\n    assert f(1) is not None\n    assert True\n"
        "    assert 1 + 1 == 2\n"
    )
    text, error = code_text.test_file(weak, "m.py", ["f"])
    assert error is not None
    stated = "def test_stated_1():\n    assert f(1) == 2"
    text, error = code_text.test_file(weak + "    assert f(2) == 3\n", "m.py", ["f"], stated)
    assert error is None
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert names == ["test_stated_1", "test_f"]  # the stated example first
    assert "callable" not in text and "is not None" not in text


def test_no_prompt_holds_example_code_whose_names_could_leak() -> None:
    for prompt in (MODULE_SYSTEM, TESTS_SYSTEM, FIX_MODULE_SYSTEM):
        for block in code_text.FENCE.findall(prompt + "\n"):
            tree = ast.parse(block)
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert "def " not in prompt and "import " not in prompt


def test_a_class_called_with_arguments_is_checked_on_its_constructor() -> None:
    spec = spec_of("Write `Ring(size)` with `Ring.put(x)` in ring.py.")
    ok = "class Ring:\n    def __init__(self, size):\n        self.size = size\n    def put(self, x):\n        pass\n"
    assert problems(ok, spec) == []
    assert problems(ok.replace("self, size", "self, n").replace("self.size = size", "pass"), spec) == [
        "Ring(n) must take exactly these parameters: Ring(size)"
    ]


def test_comparisons_inside_given_code_are_not_stated_examples() -> None:
    goal = (
        "Fix:\n```python\ndef f(x):\n    if f(0) == 1:\n        pass\n    return x\n```\n"
        "Usage:\n```\nassert f(2) == 2\n```\nand f(3) -> 3, f(4) -> (4, 4)."
    )
    assert spec_of(goal).examples == [Example("f(3)", "3"), Example("f(4)", "(4, 4)"), Example("f(2)", "2")]


def test_a_guess_contradicting_a_stated_example_is_dropped() -> None:
    stated = "def test_stated_1():\n    assert top([5, 5, 3]) == 3"
    guesses = "def test_top():\n    assert top([5, 5, 3]) is None\n    assert top([1, 2]) == 1\n    assert top([5, 5, 3]) == 3\n"
    text, error = code_text.test_file(guesses, "m.py", ["top"], stated)
    assert error is None and "is None" not in text
    assert "assert top([1, 2]) == 1" in text and text.count("top([5, 5, 3]) == 3") == 2


def test_a_method_satisfies_a_signature_the_goal_states_in_prose_about_a_class() -> None:
    spec = spec_of("Write stock.py with a class Stock: add(name: str, qty: int) and count(name: str) -> int.")
    module = (
        "class Stock:\n    def __init__(self):\n        self.items = {}\n\n"
        "    def add(self, name, qty):\n        self.items[name] = qty\n\n"
        "    def count(self, name):\n        return self.items.get(name, 0)\n"
    )
    assert problems(module, spec) == []
    assert problems(module.replace("add(self, name, qty)", "add(self, item)"), spec) == [
        "Stock.add(item) must take exactly these parameters: add(name, qty)"
    ]
    assert problems("def other():\n    pass\n", spec)[0] == "it does not define add(name, qty)"
