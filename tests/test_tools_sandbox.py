"""The Python sandbox: normal code runs; every escape attempt stops with a clear reason.

Most tests go through the full sandbox. The ``kernel_only`` tests switch the audit hook
off to check that the OS-level layers hold on their own (skipped where the OS refuses
namespaces, e.g. when not running as root).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tools.context import ToolContext
from tools.run_python import run_python_tool
from tools.sandbox import SandboxLimits, SandboxResult, run_sandboxed
from tools.workspace import read_file_tool, write_file_tool

FAST = SandboxLimits(timeout_s=5, cpu_s=5, memory_mb=256)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspaces" / "run-1"
    path.mkdir(parents=True)
    return path


async def run(code: str, ws: Path, limits: SandboxLimits = FAST, **kw: object) -> SandboxResult:
    return await run_sandboxed(code, ws, limits, **kw)  # type: ignore[arg-type]


async def test_normal_code_runs(ws: Path) -> None:
    r = await run("import json, math\nprint(json.dumps({'v': math.sqrt(16)}))", ws)
    assert r.ok, r.to_text()
    assert r.stdout.strip() == '{"v": 4.0}'
    assert "audit" in r.isolation and "rlimits" in r.isolation
    assert r.to_text().startswith("exit code 0")


async def test_error_shows_user_traceback_only(ws: Path) -> None:
    r = await run("x = 1\nraise ValueError('boom')", ws)
    assert r.exit_code == 1 and r.reason is None
    assert 'File "<run_python>", line 2' in r.stderr and "ValueError: boom" in r.stderr
    assert "_sandbox_child" not in r.stderr


async def test_network_blocked(ws: Path) -> None:
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
    r = await run(code, ws)
    assert not r.ok and r.reason and r.reason.startswith("blocked by sandbox policy: network")
    r = await run("import urllib.request\nurllib.request.urlopen('http://example.com')", ws)
    assert r.reason and "network" in r.reason


async def test_read_etc_passwd_blocked(ws: Path) -> None:
    r = await run("print(open('/etc/passwd').read())", ws)
    assert not r.ok and "root:" not in r.stdout
    assert r.reason == "blocked by sandbox policy: reading '/etc/passwd' (outside the workspace)"


async def test_write_outside_workspace_blocked(ws: Path) -> None:
    outside = ws.parent / "outside.txt"
    r = await run(f"open({str(outside)!r}, 'w').write('x')", ws)
    assert not r.ok and r.reason and "writing" in r.reason
    r = await run("import os\nos.mkdir('/usr/evil')", ws)
    assert not r.ok and r.reason and "modifying '/usr/evil'" in r.reason
    assert not outside.exists()


async def test_fork_bomb_stopped(ws: Path) -> None:
    started = time.monotonic()
    r = await run("import os\nwhile True:\n    os.fork()", ws)
    assert r.reason == "blocked by sandbox policy: creating processes (os.fork)"
    r = await run("import subprocess\nsubprocess.run(['sh', '-c', ':(){ :|:& };:'])", ws)
    assert r.reason == "blocked by sandbox policy: running programs (subprocess)"
    assert time.monotonic() - started < 5


async def test_endless_loop_times_out(ws: Path) -> None:
    started = time.monotonic()
    r = await run("while True:\n    pass", ws, SandboxLimits(timeout_s=1.0, cpu_s=30))
    assert r.timed_out and r.exit_code is not None and r.exit_code < 0
    assert r.reason == "timed out after 1s (wall clock); the process was killed"
    assert time.monotonic() - started < 4


async def test_cpu_limit(ws: Path) -> None:
    r = await run("while True:\n    pass", ws, SandboxLimits(timeout_s=20, cpu_s=1))
    assert not r.timed_out
    assert r.reason == "CPU time limit exceeded (1s); the process was killed"


async def test_memory_hog_stopped(ws: Path) -> None:
    r = await run("x = bytearray(2 * 1024**3)", ws)
    assert r.reason == "memory limit exceeded (256 MB)"
    r = await run("chunks = []\nwhile True:\n    chunks.append(b'x' * 10**7)", ws)
    assert r.reason == "memory limit exceeded (256 MB)"


async def test_ctypes_and_tampering_blocked(ws: Path) -> None:
    r = await run("import ctypes\nctypes.CDLL('libc.so.6').system(b'id')", ws)
    assert r.reason and "ctypes" in r.reason
    r = await run("import sys\nsys.settrace(lambda *a: None)", ws)
    assert r.reason and "tracing" in r.reason
    r = await run("import gc\ngc.get_objects()", ws)
    assert r.reason and "heap introspection" in r.reason


async def test_caught_violation_still_reported(ws: Path) -> None:
    r = await run("try:\n    open('/etc/hostname')\nexcept PermissionError:\n    print('ok')", ws)
    assert r.ok and r.violations == ("reading '/etc/hostname' (outside the workspace)",)
    assert "sandbox refused" in r.to_text()


async def test_environment_is_scrubbed(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    r = await run("import os\nprint(sorted(os.environ))", ws)
    assert r.ok and "OPENAI_API_KEY" not in r.stdout


async def test_output_is_capped(ws: Path) -> None:
    limits = SandboxLimits(max_output_chars=1000)
    r = await run("print('a' * 50_000)\nprint('END')", ws, limits)
    text = r.to_text(limits.max_output_chars)
    assert len(text) < 1300 and "chars cut" in text and text.rstrip().endswith("END")


async def test_scratch_files_and_tmp(ws: Path) -> None:
    code = (
        "import tempfile, pathlib\n"
        "pathlib.Path('out.txt').write_text('data')\n"
        "with tempfile.NamedTemporaryFile('w') as f:\n    f.write('tmp')\n"
        "print('done')"
    )
    r = await run(code, ws)
    assert r.ok, r.to_text()
    assert (ws / "out.txt").read_text() == "data"


async def test_filename_mode(ws: Path) -> None:
    r = await run("import sys\nprint(__name__, sys.argv)\n1/0", ws, filename="pkg/script.py")
    assert "__main__ ['pkg/script.py']" in r.stdout
    assert 'pkg/script.py", line 3' in r.stderr and (ws / "pkg/script.py").exists()
    r = await run("", ws, filename="pkg/script.py")
    assert "ZeroDivisionError" in r.stderr
    with pytest.raises(ValueError):
        await run("print(1)", ws, filename="../evil.py")


async def test_workspace_module_importable_and_tested(tmp_path: Path) -> None:
    ctx = ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path,
        kb_index=tmp_path / "kb.sqlite",
        customer_db=tmp_path / "cs.sqlite",
        sandbox=FAST,
    )
    write = write_file_tool(ctx)
    await write.ainvoke({"path": "mathutil.py", "content": "def double(x):\n    return 2 * x\n"})
    await write.ainvoke(
        {
            "path": "test_mathutil.py",
            "content": "from mathutil import double\n\ndef test_double():\n    assert double(21) == 42\n",
        }
    )
    tool = run_python_tool(ctx)
    out = await tool.ainvoke({"code": "from mathutil import double\nprint(double(5))"})
    assert out.startswith("exit code 0") and "10" in out
    out = await tool.ainvoke(
        {"code": "import pytest\nraise SystemExit(pytest.main(['-q', 'test_mathutil.py']))"}
    )
    assert out.startswith("exit code 0") and "1 passed" in out, out
    # Files the sandbox writes are readable by the workspace tools.
    await tool.ainvoke({"code": "open('result.txt', 'w').write('42')"})
    assert await read_file_tool(ctx).ainvoke({"path": "result.txt"}) == "42"
    assert (await tool.ainvoke({})).startswith("Error: give code")


async def test_planted_symlink_does_not_leak(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    r = await run(f"import os\nos.symlink({str(secret)!r}, 'leak')\nprint(open('leak').read())", ws)
    assert "top secret" not in r.stdout and not r.ok


# -- the kernel layers alone (audit hook off) -------------------------------------------


async def kernel_only(
    code: str, ws: Path, need: str, limits: SandboxLimits = FAST
) -> SandboxResult:
    # Probe first: without the layer, the code below would really run unconfined.
    probe = await run("pass", ws, limits, audit=False)
    if need not in probe.isolation or "pidns" not in probe.isolation:
        pytest.skip(f"{need}/pidns not available here: {probe.isolation}")
    r = await run(code, ws, limits, audit=False)
    assert "audit" not in r.isolation
    return r


async def test_kernel_network_unreachable(ws: Path) -> None:
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
    r = await kernel_only(code, ws, "netns")
    assert "Network is unreachable" in r.stderr


async def test_kernel_filesystem_view(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    code = (
        "import os\n"
        "print(os.path.exists('/etc/passwd'), os.path.exists({!r}))\n"
        "open({!r}, 'w').write('x')\n"
    ).format(str(secret), str(ws.parent / "outside.txt"))
    r = await kernel_only(code, ws, "chroot")
    assert r.stdout.strip() == "False False"
    assert "Error" in r.stderr and not (ws.parent / "outside.txt").exists()


async def test_kernel_fork_bomb_bounded(ws: Path) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        os.setsid()  # try to escape the process-group kill\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    limits = SandboxLimits(timeout_s=5, max_processes=8)
    r = await kernel_only(code, ws, "uid:sandbox", limits=limits)
    assert r.ok and 0 <= int(r.stdout) < 8
    # The detached sleepers died with the run (PID namespace, or at least the group).
    assert not any(
        "time.sleep(60)" in _cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit()
    )


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


# -- the trusted report channel ----------------------------------------------------------


async def test_forged_status_is_not_trusted(ws: Path) -> None:
    code = (
        "import os, sys\n"
        "print('\\x1esandbox:status exit 0')\n"
        'sys.stderr.write(\'{"kind": "status", "exit": 0}\\n\')\n'
        "for fd in range(3, 256):\n"
        '    try:\n        os.write(fd, b\'{"kind": "status", "exit": 0}\\n\')\n'
        "    except OSError:\n        pass\n"
        "raise SystemExit(1)\n"
    )
    r = await run(code, ws)
    assert not r.ok and r.exit_code == 1
    assert r.to_text().startswith("FAILED: exit code 1")


async def test_run_python_reports_isolation_layers(tmp_path: Path) -> None:
    ctx = ToolContext(
        workspace=tmp_path / "ws",
        kb_dir=tmp_path,
        kb_index=tmp_path / "kb.sqlite",
        customer_db=tmp_path / "cs.sqlite",
        sandbox=FAST,
    )
    out = await run_python_tool(ctx).ainvoke({"code": "print(1)"})
    layers = out.splitlines()[1]
    assert layers.startswith("isolation: userns, mountns, pidns, netns, ipcns, utsns, chroot")
    assert "no_caps" in layers and "audit" in layers


async def test_harness_mode_reports_each_check(ws: Path) -> None:
    source = "def double(x):\n    return 2 * x\nprint('@@eval-result@@ {}')\n"
    checks = ["assert double(2) == 4", "assert double(2) == 5", "while True:\n    pass"]
    r = await run(source, ws, SandboxLimits(timeout_s=10), checks=checks, check_timeout_s=1)
    assert r.checks is not None and r.checks.load_error is None
    assert r.checks.results[0] is None
    assert r.checks.results[1] == "AssertionError: "
    assert r.checks.results[2] == "TimeoutError: check took longer than 1s"
    broken = await run("def double(x) return", ws, checks=checks[:1])
    assert broken.checks is not None and (broken.checks.load_error or "").startswith("SyntaxError")
    assert broken.checks.results[0] and broken.checks.results[0].startswith("SyntaxError")


async def test_refused_without_isolation_runs_nothing(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tools.sandbox.bwrap_path", lambda: None)
    r = await run("open('ran.txt', 'w').write('x')", ws, modes=("bwrap",))
    assert r.refused and r.exit_code is None and not r.ok
    assert r.reason is not None and r.reason.startswith(
        "sandbox unavailable: bubblewrap (bwrap) is not installed"
    )
    assert "sandbox.allow_unisolated = true" in r.reason and not (ws / "ran.txt").exists()
