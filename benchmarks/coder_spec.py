"""The coder specialist alone on the embedded model: goals written for this benchmark (a
docstring stub with doctests, an unusual stated signature, a bug report with inline code,
stated input/output pairs, a plain named function, a class with stated methods), each
checked by hidden asserts run on the files it wrote. Not tuned on: a measure of the coder's
step flow (time, model calls, whether the task completed, whether the hidden asserts pass).

    PYTHONPATH=. .venv/bin/python -m benchmarks.coder_spec OUT.json [goal keys...]
"""

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agents import AgentRegistry, build_specialist
from tests.scripting import context_of

GOALS = [
 ("runlen", '''Complete this function:
def run_lengths(s: str) -> list[tuple[str, int]]:
    """Return the runs of equal characters in s as (char, count) pairs.
    >>> run_lengths('aaab')
    [('a', 3), ('b', 1)]
    >>> run_lengths('')
    []
    """
''', "assert run_lengths('abba') == [('a', 1), ('b', 2), ('a', 1)]\nassert run_lengths('x') == [('x', 1)]\nassert run_lengths('') == []\nassert run_lengths('zzz') == [('z', 3)]\n"),
 ("weave", "Write `interleave(first, second, *rest)` in weave.py: it returns a list taking one item from each sequence in turn, skipping sequences that are used up, until all are exhausted. `interleave([1, 2, 3], 'ab')` gives `[1, 'a', 2, 'b', 3]`.",
  "assert interleave([1], [2], [3, 4]) == [1, 2, 3, 4]\nassert interleave([], []) == []\nassert interleave('ab', 'xyz') == ['a', 'x', 'b', 'y', 'z']\nassert interleave([1, 2, 3], 'ab') == [1, 'a', 2, 'b', 3]\n"),
 ("second", '''My function for the second largest distinct number is wrong when the largest value appears twice:
def second_largest(nums):
    ordered = sorted(nums)
    return ordered[-2]
second_largest([5, 5, 3]) -> 3. It should also return None when there is no second distinct value.''',
  "assert second_largest([5, 5, 3]) == 3\nassert second_largest([1, 2, 3]) == 2\nassert second_largest([4, 4]) is None\nassert second_largest([-1, -2]) == -2\nassert second_largest([7]) is None\n"),
 ("wrap", "Implement `wrap_text(text, width=10)` that splits text into lines of at most width characters, breaking only at spaces; a word longer than width gets a line of its own. wrap_text('one two three', 7) == ['one two', 'three']",
  "assert wrap_text('one two three', 7) == ['one two', 'three']\nassert wrap_text('a b c', 3) == ['a b', 'c']\nassert wrap_text('', 5) == []\nassert wrap_text('hello world') == ['hello', 'world']\n"),
 ("digits", "Write a Python function digit_sum(n: int) -> int that returns the sum of the decimal digits of n; for a negative n use its absolute value. Save it in digits.py.",
  "assert digit_sum(0) == 0\nassert digit_sum(123) == 6\nassert digit_sum(-45) == 9\nassert digit_sum(1000) == 1\n"),
 ("bstack", "Write a class `BoundedStack(capacity)` in bstack.py with `BoundedStack.push(item)` that raises OverflowError when the stack is full, `BoundedStack.pop()` that raises IndexError when it is empty, and `BoundedStack.size()` returning how many items it holds.",
  "s = BoundedStack(2)\ns.push(1); s.push(2)\ntry:\n    s.push(3)\n    raise SystemExit('no overflow')\nexcept OverflowError:\n    pass\nassert s.size() == 2\nassert s.pop() == 2\nassert s.pop() == 1\ntry:\n    s.pop()\n    raise SystemExit('no index error')\nexcept IndexError:\n    pass\nassert s.size() == 0\n"),
]

REGISTRY = AgentRegistry.builtin()

async def one(key: str, goal: str, hidden: str, data_dir: Path) -> dict[str, object]:
    """Run the coder on ``goal`` in a fresh data dir; run ``hidden`` on the files it wrote."""
    cfg = {"configurable": {"thread_id": f"cb-{key}-{uuid.uuid4().hex[:6]}",
                            "settings": {"model": "local", "data_dir": str(data_dir)}}}
    spec = REGISTRY.get("coder").model_copy(update={"flow": "steps"})
    graph = build_specialist(spec)
    task = {"id": "t1", "agent": "coder", "instruction": goal, "depends_on": []}
    t0 = time.time()
    out = await graph.ainvoke({"task": task, "goal": goal}, cfg, context=context_of(cfg))
    dt = time.time() - t0
    ws = next((data_dir / "workspaces").iterdir())
    mods = [p for p in ws.glob("*.py") if not p.name.startswith("test_")]
    src = "\n\n".join(p.read_text() for p in mods)
    with tempfile.TemporaryDirectory() as d:  # the written code runs here, as the hidden check
        Path(d, "m.py").write_text(src + "\n\n" + hidden)
        r = subprocess.run([sys.executable, "m.py"], cwd=d, capture_output=True, text=True, timeout=30)
    ok = r.returncode == 0
    done = out.get("error") is None
    return {"goal": key, "s": round(dt, 1), "calls": (out.get("usage") or {}).get("model_calls"),
            "done": done, "hidden": ok, "files": [p.name for p in mods],
            "err": (out.get("error") or "")[:160], "hid_err": r.stderr.strip().splitlines()[-1:] if not ok else [],
            "evidence": [ln for ln in (out.get("output") or "").splitlines() if ln.startswith("Evidence")][:1]}

async def main() -> None:
    keys = sys.argv[2:] or [g[0] for g in GOALS]
    rows = []
    for key, goal, hidden in GOALS:
        if key not in keys:
            continue
        d = Path(tempfile.mkdtemp(prefix=f"cb-{key}-"))
        row = await one(key, goal, hidden, d)
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))

if __name__ == "__main__":
    asyncio.run(main())
