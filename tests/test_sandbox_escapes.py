"""Escape attempts against the Python sandbox, as three identities.

Each identity runs this file as a driver (``python tests/test_sandbox_escapes.py run BASE``)
in a subprocess: as root, as root without CAP_SYS_ADMIN (``capsh --drop=cap_sys_admin``),
and as ``nobody``. The interpreter lives under ``/root`` on these machines, which other
users cannot enter, so the ``nobody`` driver starts as root in a private mount namespace
that lays a tmpfs over every blocking directory and binds the interpreter, the project and
the scratch directory back at their own paths, then drops to ``nobody`` and ``exec``s
itself: the same paths, reachable, with nothing copied and nothing changed on the host.

Every attempt is judged on the host (does the file outside exist, did the listener get a
connection, does a canary appear in the output or the workspace), never by trusting what
the sandboxed code says. Attempts marked ``kernel`` switch the audit hook off, so only the
namespaces, the chroot, the dropped capabilities and the rlimits stand in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the driver runs as a script
    sys.path.insert(0, str(ROOT))

from tools.sandbox import SandboxLimits, SandboxResult, bwrap_path, run_sandboxed  # noqa: E402

SECRET = "sk-canary-7f3e1d"  # in the fake project config and in the driver's environment
FAST = SandboxLimits(timeout_s=6, cpu_s=5, memory_mb=256)
NOBODY = 65534
CAP_SYS_ADMIN = 21


@dataclass
class Ctx:
    base: Path
    outside: Path
    secret_file: Path
    port: int
    udp_port: int
    hits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    name: str
    code: str
    blocked: Callable[[SandboxResult, Ctx, Path], bool]
    audit: bool = True
    limits: SandboxLimits = FAST
    checks: tuple[str, ...] | None = None
    modes: tuple[str, ...] | None = None


def _text(r: SandboxResult, ws: Path) -> str:
    """Everything the code could have smuggled a secret into."""
    parts = [r.stdout, r.stderr]
    for path in ws.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def no_file(name: str) -> Callable[[SandboxResult, Ctx, Path], bool]:
    return lambda r, c, ws: not (c.outside / name).exists()


def no_secret(r: SandboxResult, c: Ctx, ws: Path) -> bool:
    text = _text(r, ws)
    return SECRET not in text and "root:x:0:0" not in text


def no_connection(r: SandboxResult, c: Ctx, ws: Path) -> bool:
    return not c.hits and "CONNECTED" not in r.stdout


def not_ok(r: SandboxResult, c: Ctx, ws: Path) -> bool:
    return not r.ok


def _survivors(ws: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/cwd").startswith(str(ws)):
                    found.append(pid)
            except OSError:
                pass
    return found


def fork_bounded(r: SandboxResult, c: Ctx, ws: Path) -> bool:
    time.sleep(0.2)
    forks = len(list(ws.glob("fork-*")))
    return forks < 16 and not _survivors(ws)


def _attempts(c: Ctx, bwrap: bool) -> list[Attempt]:
    out = str(c.outside)
    secret = str(c.secret_file)
    write_open = f"open({out + '/open.txt'!r}, 'w').write('x')"
    write_sqlite = (
        f"import sqlite3\nsqlite3.connect({out + '/db.sqlite'!r}).execute('create table t(x)')"
    )
    write_os = (
        "import os\n"
        f"fd = os.open({out + '/os.txt'!r}, os.O_CREAT | os.O_WRONLY, 0o644)\n"
        "os.write(fd, b'x')"
    )
    write_symlink = (
        f"import os\nos.symlink({out + '/sym.txt'!r}, 'link')\nopen('link', 'w').write('x')"
    )
    write_dotdot = "open('../../outside/dotdot.txt', 'w').write('x')  # ws is BASE/wss/<tmp>"
    read_passwd = (
        "import shutil\nprint(open('/etc/passwd').read())\nshutil.copy('/etc/passwd', 'p.txt')"
    )
    read_config = f"print(open({secret!r}).read())"
    patched = (
        "import os, posixpath\n"
        "fake = lambda *a, **k: os.getcwd() + '/x'\n"
        "for name in ('abspath', 'realpath', 'normpath', 'join', 'expanduser'):\n"
        "    setattr(posixpath, name, fake)\n"
        "os.path = posixpath\n"
        "try:\n    print(open('/etc/passwd').read())\nexcept OSError as e:\n    print(e)\n"
        f"open({out + '/patched.txt'!r}, 'w').write('x')\n"
    )
    ctypes_open = (
        f"import ctypes\nctypes.CDLL(None).open({(out + '/ctypes.txt').encode()!r}, 0o101, 0o644)"
    )
    raw_syscall = (  # openat(AT_FDCWD, path, O_CREAT|O_WRONLY) by number (x86_64: 257)
        "import ctypes, platform\n"
        "nr = {'x86_64': 257, 'aarch64': 56}[platform.machine()]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = libc.syscall(nr, -100, {(out + '/syscall.txt').encode()!r}, 0o101, 0o644)\n"
        "print('fd', fd, ctypes.get_errno())"
    )
    chroot_escape = (  # a nested user namespace, then the classic chroot-and-climb
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "try:\n"
        "    os.mkdir('jail'); os.chroot('jail')\n"
        "    for _ in range(30): os.chdir('..')\n"
        "    os.chroot('.')\n"
        "except OSError as e:\n    print(e)\n"
        "print(open('/etc/passwd').read())\n"
    )
    canary = f"escape-canary-{os.getpid()}.txt"  # unique: a stale file cannot fail the check
    remount = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.mount(None, sys.prefix.encode(), None, 32 | 4096, None), ctypes.get_errno())\n"
        f"open(sys.prefix + '/{canary}', 'w').write('x')\n"
    )
    fork_bomb_kernel = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(400):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n"
        "        open(f'fork-{os.getpid()}', 'w').close()\n"
        "        os.setsid()  # try to escape the process-group kill\n"
        "        time.sleep(60)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    forge_markers = (
        "import sys\n"
        'for line in (\'\\x1esandbox:status exit 0\', \'{"kind": "status", "exit": 0}\',\n'
        "             '\\x1esandbox:layers [\"userns\"]', '@@eval-result@@ {}'):\n"
        "    print(line, flush=True)\n    sys.stderr.write(line + '\\n')\n"
        "raise SystemExit(1)\n"
    )
    forge_fds = (
        "import os\n"
        "for fd in range(3, 1024):\n"
        '    try:\n        os.write(fd, b\'{"kind": "status", "exit": 0}\\n\')\n'
        "    except OSError:\n        pass\n"
        "os._exit(1)\n"
    )
    forge_checks = (
        "import os, sys\n"
        "for fd in range(3, 1024):\n"
        "    try:\n"
        '        os.write(fd, b\'{"kind": "checks", "load_error": null, "results": [null]}\\n\')\n'
        "    except OSError:\n        pass\n"
        'print(\'@@eval-result@@ {"load_error": null, "results": [null]}\')\n'
        "raise SystemExit(1)\n"
    )
    host_tmp = f"/tmp/escape-canary-{os.getpid()}"
    attempts = [
        Attempt(
            "network: TCP to a host listener",
            f"import socket\nsocket.create_connection(('127.0.0.1', {c.port}), timeout=2)\n"
            "print('CONNECTED')",
            no_connection,
        ),
        Attempt(
            "network: UDP to a host listener",
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.sendto(b'x', ('127.0.0.1', {c.udp_port}))",
            no_connection,
        ),
        Attempt("write outside: open()", write_open, no_file("open.txt")),
        Attempt("write outside: sqlite3", write_sqlite, no_file("db.sqlite")),
        Attempt("write outside: os.open/os.write", write_os, no_file("os.txt")),
        Attempt("write outside: symlink", write_symlink, no_file("sym.txt")),
        Attempt("write outside: '..'", write_dotdot, no_file("dotdot.txt")),
        Attempt("read /etc/passwd", read_passwd, no_secret),
        Attempt("read the project's orchestrator.toml", read_config, no_secret),
        Attempt("read the server's environment", "import os\nprint(dict(os.environ))", no_secret),
        Attempt(
            "monkey-patched path helpers",
            patched,
            lambda r, c, ws: no_secret(r, c, ws) and no_file("patched.txt")(r, c, ws),
        ),
        Attempt("ctypes: libc open()", ctypes_open, no_file("ctypes.txt")),
        Attempt("fork bomb", "import os\nwhile True:\n    os.fork()", not_ok),
        Attempt(
            "endless loop",
            "while True:\n    pass",
            lambda r, c, ws: r.timed_out and r.duration_s < 5,
            limits=SandboxLimits(timeout_s=1, cpu_s=30, memory_mb=256),
        ),
        Attempt(
            "memory hog",
            "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))",
            lambda r, c, ws: not r.ok and "memory" in (r.reason or ""),
        ),
        Attempt(
            "CPU hog (threads)",
            "import threading\n"
            "def spin():\n    while True:\n        pass\n"
            "for _ in range(3):\n    threading.Thread(target=spin, daemon=True).start()\n"
            "spin()",
            lambda r, c, ws: (r.reason or "").startswith("CPU time limit") and r.duration_s < 10,
            limits=SandboxLimits(timeout_s=15, cpu_s=1, memory_mb=256),
        ),
        Attempt(
            "forged status: markers, then SystemExit(1)",
            forge_markers,
            lambda r, c, ws: not r.ok and r.exit_code == 1,
        ),
        Attempt(
            "forged status: write to every fd",
            forge_fds,
            lambda r, c, ws: not r.ok and r.exit_code == 1,
        ),
        Attempt(
            "forged check results",
            forge_checks,
            lambda r, c, ws: (
                r.checks is not None
                and r.checks.load_error is not None
                and all(e and "SystemExit: 1" in e for e in r.checks.results)
            ),
            checks=("assert True",),
        ),
        # The kernel layers alone (audit hook off).
        Attempt(
            "kernel: TCP to a host listener",
            f"import socket\nsocket.create_connection(('127.0.0.1', {c.port}), timeout=2)\n"
            "print('CONNECTED')",
            no_connection,
            audit=False,
        ),
        Attempt("kernel: write outside: open()", write_open, no_file("open.txt"), audit=False),
        Attempt("kernel: write outside: sqlite3", write_sqlite, no_file("db.sqlite"), audit=False),
        Attempt("kernel: write outside: os.open", write_os, no_file("os.txt"), audit=False),
        Attempt("kernel: write outside: symlink", write_symlink, no_file("sym.txt"), audit=False),
        Attempt("kernel: write outside: '..'", write_dotdot, no_file("dotdot.txt"), audit=False),
        Attempt(
            "kernel: write the host's /tmp",
            f"open({host_tmp!r}, 'w').write('x')",
            lambda r, c, ws: not os.path.exists(host_tmp),
            audit=False,
        ),
        Attempt("kernel: read /etc/passwd", read_passwd, no_secret, audit=False),
        Attempt("kernel: read orchestrator.toml", read_config, no_secret, audit=False),
        Attempt(
            "kernel: read /proc",
            "import os\nprint(open('/proc/1/environ').read())",
            lambda r, c, ws: no_secret(r, c, ws) and not r.ok,
            audit=False,
        ),
        Attempt("kernel: raw openat syscall", raw_syscall, no_file("syscall.txt"), audit=False),
        Attempt("kernel: nested userns + chroot climb", chroot_escape, no_secret, audit=False),
        Attempt(
            "kernel: remount the interpreter read-write",
            remount,
            lambda r, c, ws: not Path(sys.prefix, canary).exists(),
            audit=False,
        ),
        Attempt(
            "kernel: fork bomb",
            fork_bomb_kernel,
            fork_bounded,
            audit=False,
            limits=SandboxLimits(timeout_s=5, cpu_s=5, memory_mb=256, max_processes=16),
        ),
        Attempt(
            "kernel: forged status: write to every fd",
            forge_fds,
            lambda r, c, ws: not r.ok and r.exit_code == 1,
            audit=False,
        ),
    ]
    if bwrap:
        bw = ("bwrap",)
        attempts += [
            Attempt("bwrap: write outside", write_open, no_file("open.txt"), audit=False, modes=bw),
            Attempt("bwrap: read /etc/passwd", read_passwd, no_secret, audit=False, modes=bw),
            Attempt(
                "bwrap: TCP to a host listener",
                f"import socket\nsocket.create_connection(('127.0.0.1', {c.port}), timeout=2)",
                no_connection,
                audit=False,
                modes=bw,
            ),
            Attempt(
                "bwrap: forged status",
                forge_fds,
                lambda r, c, ws: not r.ok and r.exit_code == 1,
                audit=False,
                modes=bw,
            ),
        ]
    return attempts


def _listeners(c: Ctx) -> tuple[socket.socket, socket.socket]:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    c.port, c.udp_port = tcp.getsockname()[1], udp.getsockname()[1]

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = tcp.accept()
                c.hits.append("tcp")
                conn.close()

    def receive() -> None:
        with contextlib.suppress(OSError):
            while True:
                udp.recv(16)
                c.hits.append("udp")

    threading.Thread(target=accept, daemon=True).start()
    threading.Thread(target=receive, daemon=True).start()
    return tcp, udp


def _cap_eff() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


async def drive(base: Path) -> dict[str, Any]:
    """Run every attempt (a few at a time); one JSON-able summary."""
    c = Ctx(base, base / "outside", base / "project" / "orchestrator.toml", 0, 0)
    tcp, udp = _listeners(c)
    os.environ["OPENAI_API_KEY"] = SECRET  # must never reach the code
    control_ws = Path(tempfile.mkdtemp(dir=base / "wss"))
    control = await run_sandboxed("print(6 * 7)", control_ws, FAST)
    bwrap_control = None
    use_bwrap = bwrap_path() is not None and os.geteuid() != 0  # root never falls back to it
    if use_bwrap:  # the fallback must really run code, not just refuse
        bw = await run_sandboxed("print(6 * 7)", control_ws, FAST, modes=("bwrap",))
        bwrap_control = {"ok": bw.ok, "layers": list(bw.isolation), "reason": bw.reason}
    results: list[dict[str, Any]] = []
    if control.refused or not control.ok:
        return {"control": control.reason or control.stderr[-300:], "results": results}
    gate = asyncio.Semaphore(4)

    async def one(a: Attempt) -> None:
        ws = Path(tempfile.mkdtemp(dir=base / "wss"))
        async with gate:
            r = await run_sandboxed(
                a.code,
                ws,
                a.limits,
                audit=a.audit,
                checks=a.checks,
                modes=a.modes,  # type: ignore[arg-type]
            )
        ok = r.refused or a.blocked(r, c, ws)
        results.append(
            {
                "name": a.name,
                "blocked": bool(ok),
                "refused": r.refused,
                "layers": list(r.isolation),
                "detail": (r.reason or "")[:160] or r.stdout[-160:] or r.stderr[-160:],
            }
        )

    await asyncio.gather(*(one(a) for a in _attempts(c, use_bwrap)))
    c.hits.clear()  # the listeners stop with this process
    tcp.close()
    udp.close()
    return {
        "uid": os.getuid(),
        "cap_sys_admin": bool(_cap_eff() & (1 << CAP_SYS_ADMIN)),
        "control": None,
        "control_layers": list(control.isolation),
        "bwrap_control": bwrap_control,
        "results": sorted(results, key=lambda x: x["name"]),
    }


async def drive_without_userns(base: Path) -> dict[str, Any]:
    """In a user namespace whose ``user.max_user_namespaces`` is 0: run_python must refuse."""
    from langchain_core.tools import ToolException  # noqa: F401 - the tool's error path

    from tools.context import ToolContext
    from tools.run_python import run_python_tool

    ws = Path(tempfile.mkdtemp(dir=base / "wss"))
    ctx = ToolContext(workspace=ws, kb_dir=base, kb_index=base / "i", customer_db=base / "c")
    out = await run_python_tool(ctx).ainvoke({"code": "open('ran.txt', 'w').write('x')"})
    unisolated = await run_sandboxed(
        "print('ran')", ws, SandboxLimits(allow_unisolated=True, timeout_s=5)
    )
    return {
        "tool_output": out,
        "ran": (ws / "ran.txt").exists(),
        "unisolated_ok": unisolated.ok,
        "unisolated_layers": list(unisolated.isolation),
    }


RACE_S = 4.0
CANARY = "outside-canary-5d2a"


def _race_code(victim: Path, seconds: float) -> str:
    """Sandboxed code that keeps swapping a real directory with a link to ``victim``'s
    directory (absolute, and relative through ``..``), as fast as it can."""
    rel = os.path.relpath(victim, "/WS")  # the workspace is BASE/wss/<tmp>: see _rel_victim
    return (
        "import os, time\n"
        "for d in ('a', 'd'):\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "    open(d + '/f.txt', 'w').write('inside-content')\n"
        f"os.symlink({str(victim)!r}, 'b')\n"
        f"os.symlink({rel!r}, 'c')\n"
        "n = k = 0\n"
        "def swap(x, y):\n"
        "    global k\n"
        "    os.rename(x, 't')\n"
        "    while True:\n"
        "        try:\n"
        "            os.rename(y, x)\n"
        "            break\n"
        "        except OSError:  # write_file made x meanwhile: move it aside\n"
        "            k += 1\n"
        "            try: os.rename(x, f'junk{k}')\n"
        "            except OSError: pass\n"
        "    os.rename('t', y)\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        "    swap('a', 'b'); swap('d', 'c')\n"
        "    n += 1\n"
        "print('SWAPS', n)\n"
    )


async def drive_workspace(base: Path) -> dict[str, Any]:
    """The file tools against sandboxed code that races them, and against a FIFO it made.

    Judged on the host: did a read return the victim's text, did a write change the victim
    or create a file beside it, did a tool block on the FIFO."""
    from tools.context import ToolContext
    from tools.data import query_data_tool
    from tools.workspace import list_files_tool, read_file_tool, write_file_tool

    victim_dir = Path(tempfile.mkdtemp(dir=base / "outside"))
    victim = victim_dir / "f.txt"
    victim.write_text(CANARY)
    (victim_dir / "v.csv").write_text(f"x\n{CANARY}\n")
    ws = Path(tempfile.mkdtemp(dir=base / "wss"))
    ctx = ToolContext(workspace=ws, kb_dir=base, kb_index=base / "i", customer_db=base / "c")
    read, write, ls = read_file_tool(ctx), write_file_tool(ctx), list_files_tool(ctx)
    query = query_data_tool(ctx)
    code = _race_code(victim_dir, RACE_S).replace(
        repr(os.path.relpath(victim_dir, "/WS")), repr(os.path.relpath(victim_dir, ws)))
    race = asyncio.ensure_future(run_sandboxed(code, ws, SandboxLimits(timeout_s=RACE_S + 8)))
    counts = {"calls": 0, "outside": 0, "inside": 0, "refused": 0}
    while not race.done() and not os.path.lexists(ws / "c"):  # its set-up, not ours
        await asyncio.sleep(0.01)
    while not race.done():
        for d in ("a", "d"):
            outs = [
                await read.ainvoke({"path": f"{d}/f.txt"}),
                await write.ainvoke({"path": f"{d}/f.txt", "content": "PWNED"}),
                await write.ainvoke({"path": f"{d}/new.txt", "content": "PWNED"}),
                await ls.ainvoke({"path": d}),
                await query.ainvoke({"sql": "SELECT * FROM v", "source": f"{d}/v.csv"}),
            ]
            await write.ainvoke({"path": f"{d}/f.txt", "content": "inside-content"})
            for out in outs:
                counts["calls"] += 1
                counts["outside"] += CANARY in out or "v.csv (" in out  # its text, or listed
                counts["inside"] += "inside-content" in out
                counts["refused"] += out.startswith("Error:")
    result = await race
    fifo = await _fifo_attempts(ws, ctx)
    return {
        "race_ok": result.ok,
        "race_out": (result.stdout + result.stderr)[-300:],
        **counts,
        "victim": victim.read_text(),
        "victim_files": sorted(p.name for p in victim_dir.iterdir()),
        **fifo,
    }


async def _fifo_attempts(ws: Path, ctx: Any) -> dict[str, Any]:
    """A FIFO and a socket made by sandboxed code: every file tool answers at once."""
    from tools.data import query_data_tool
    from tools.workspace import read_file_tool, write_file_tool

    code = (
        "import os, socket\n"
        "os.mkfifo('notes.txt'); os.mkfifo('pipe.csv')\n"
        "socket.socket(socket.AF_UNIX).bind('sock.txt')\n"
        "print('MADE')\n"
    )
    made = await run_sandboxed(code, ws, FAST, audit=False)  # the hook refuses bind()
    kinds = {n: os.lstat(ws / n).st_mode for n in ("notes.txt", "pipe.csv", "sock.txt")
             if (ws / n).exists() or os.path.lexists(ws / n)}
    calls = [
        (read_file_tool(ctx), {"path": "notes.txt"}),
        (write_file_tool(ctx), {"path": "notes.txt", "content": "x"}),
        (write_file_tool(ctx), {"path": "notes.txt", "content": "x", "append": True}),
        (read_file_tool(ctx), {"path": "sock.txt"}),
        (write_file_tool(ctx), {"path": "sock.txt", "content": "x"}),
        (query_data_tool(ctx), {"sql": "SELECT 1", "source": "pipe.csv"}),
    ]
    outs: list[str] = []
    hung = 0
    for tool, args in calls:
        try:
            outs.append(await asyncio.wait_for(tool.ainvoke(args), 5))
        except TimeoutError:
            hung += 1
            outs.append("HUNG")
            for name in ("notes.txt", "pipe.csv"):  # release the blocked worker thread
                for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
                    with contextlib.suppress(OSError):
                        os.close(os.open(ws / name, flags))
    import stat

    return {
        "fifo_made": made.ok and "MADE" in made.stdout,
        "fifo_kinds": sorted(k for k, m in kinds.items()
                             if stat.S_ISFIFO(m) or stat.S_ISSOCK(m)),
        "fifo_outputs": outs,
        "fifo_hung": hung,
    }


def _limit_user_namespaces() -> None:
    """Enter a user namespace of our own and set its user.max_user_namespaces to 0."""
    from tools._sandbox_child import CLONE_NEWUSER, _Libc

    uid, gid = os.geteuid(), os.getegid()
    _Libc().unshare(CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1\n")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1\n")
    Path("/proc/sys/user/max_user_namespaces").write_text("0\n")


def _first_blocked(path: Path) -> Path | None:
    """The outermost ancestor of ``path`` that other users cannot traverse."""
    cur = Path("/")
    for part in path.parts[1:]:
        cur = cur / part
        if not os.stat(cur).st_mode & 0o001:
            return cur
    return None


def _reachable_view(paths: list[Path]) -> None:
    """In a new mount namespace: tmpfs over each blocking directory, needed paths bound back."""
    from tools._sandbox_child import MS_BIND, MS_PRIVATE, MS_REC, _Libc

    libc = _Libc()
    libc.unshare(0x00020000)  # CLONE_NEWNS
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    blocked = sorted({b for p in paths if (b := _first_blocked(p)) is not None})
    for top in blocked:
        inner = sorted({p for p in paths if top in p.parents})
        stage = Path(tempfile.mkdtemp(prefix="escape-view-"))
        for i, p in enumerate(inner):
            (stage / str(i)).mkdir()
            libc.mount(str(p), str(stage / str(i)), None, MS_BIND | MS_REC, None)
        libc.mount("tmpfs", str(top), "tmpfs", 0, "mode=755,size=1m")
        for i, p in enumerate(inner):
            p.mkdir(parents=True, exist_ok=True)
            libc.mount(str(stage / str(i)), str(p), None, MS_BIND | MS_REC, None)


def _interpreter_paths() -> list[Path]:
    paths = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths.add(Path(sys.executable).resolve().parent.parent)
    return sorted(paths)


def main(argv: list[str]) -> None:
    action, base = argv[0], Path(argv[-1])
    if action == "as-nobody":  # root: make the paths reachable, drop to nobody, start over
        _reachable_view([*_interpreter_paths(), ROOT, base])
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        os.execv(sys.executable, [sys.executable, __file__, *argv[1:]])
    if action == "workspace":
        print(json.dumps(asyncio.run(drive_workspace(base))))
        return
    if action == "no-userns":
        _limit_user_namespaces()
        print(json.dumps(asyncio.run(drive_without_userns(base))))
        return
    print(json.dumps(asyncio.run(drive(base))))


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Any:
    path = Path(tempfile.mkdtemp(prefix="sandbox-escapes-"))
    path.chmod(0o755)
    (path / "outside").mkdir(mode=0o777)
    (path / "outside").chmod(0o777)
    (path / "wss").mkdir()
    (path / "wss").chmod(0o777)
    (path / "project").mkdir()
    (path / "project").chmod(0o755)
    config = path / "project" / "orchestrator.toml"
    config.write_text(f'[models.gpt]\napi_key = "{SECRET}"\n')
    config.chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _driver(prefix: list[str], base: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [*prefix, *args, str(base)], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shell(argv: list[str]) -> str:
    import shlex

    return "exec " + shlex.join(argv)


IDENTITIES = ["root", "root-without-cap_sys_admin", "nobody"]


def _prefix(identity: str) -> list[str]:
    me = [sys.executable, __file__]
    if os.geteuid() != 0:
        pytest.skip("the escape suite switches identities: it runs as root (as CI does)")
    if identity == "root":
        return me
    if identity == "root-without-cap_sys_admin":
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("capsh (Debian package libcap2-bin) is not installed")
        return [capsh, "--drop=cap_sys_admin", "--", "-c", _shell(me) + ' "$@"', "capsh"]
    needs_view = any(_first_blocked(p) for p in [*_interpreter_paths(), ROOT])
    if needs_view and not _cap_eff() & (1 << CAP_SYS_ADMIN):
        pytest.skip("nobody cannot reach the interpreter and, without CAP_SYS_ADMIN, no view")
    return [*me, "as-nobody"]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_escape_attempt_fails(identity: str, base: Path) -> None:
    summary = _driver(_prefix(identity), base, "run")
    assert summary["control"] is None, f"the sandbox refused normal code: {summary['control']}"
    if identity == "root":
        assert summary["uid"] == 0 and summary["cap_sys_admin"]
    elif identity == "nobody":
        assert summary["uid"] == NOBODY
    else:
        assert summary["uid"] == 0 and not summary["cap_sys_admin"]
    results = summary["results"]
    escaped = [r for r in results if not r["blocked"]]
    refused = sum(r["refused"] for r in results)
    print(f"\n{identity}: {len(results)} attempts, {len(results) - len(escaped)} blocked", end="")
    print(f" ({refused} by refusing to start)" if refused else "")
    assert len(results) >= 30
    assert not escaped, json.dumps(escaped, indent=1)
    assert "userns" in summary["control_layers"] and "no_caps" in summary["control_layers"]
    if summary["bwrap_control"] is not None:  # bubblewrap installed: its mode works too
        assert summary["bwrap_control"]["ok"], summary["bwrap_control"]
        assert summary["bwrap_control"]["layers"][0] == "bwrap"


@pytest.mark.parametrize("identity", IDENTITIES)
def test_file_tools_race_free_against_sandboxed_code(identity: str, base: Path) -> None:
    """Sandboxed code swapping directories and links while read_file, write_file,
    list_files and query_data walk a path through them; then a FIFO and a socket."""
    out = _driver(_prefix(identity), base, "workspace")
    assert out["race_ok"] and "SWAPS" in out["race_out"], out["race_out"]
    assert int(out["race_out"].split("SWAPS")[1].split()[0]) > 100
    assert out["calls"] > 50 and out["inside"] > 0, out  # the tools ran during the race
    assert out["outside"] == 0, out
    print(f"\n{identity}: {out['calls']} tool calls during the race, {out['refused']} refused,"
          f" none reached outside")
    assert out["victim"] == CANARY and out["victim_files"] == ["f.txt", "v.csv"], out
    assert out["fifo_made"], out
    assert out["fifo_kinds"] == ["notes.txt", "pipe.csv", "sock.txt"], out
    assert out["fifo_hung"] == 0, out["fifo_outputs"]
    for text in out["fifo_outputs"]:
        assert text.startswith("Error:") and "\n" not in text, text
    assert "FIFO" in out["fifo_outputs"][0] and "socket" in out["fifo_outputs"][3]


def test_without_user_namespaces_run_python_refuses(base: Path) -> None:
    out = _driver([*_prefix("nobody"), "no-userns"], base, "run")
    text = out["tool_output"]
    assert text.startswith(
        "Error: run_python failed: SandboxUnavailableError: sandbox unavailable:"
    )
    assert "the kernel refused a user namespace (unshare(CLONE_NEWUSER): ENOSPC" in text
    assert "sandbox.allow_unisolated = true" in text and "\n" not in text
    assert not out["ran"]
    # Opting in runs it, and says which layers (few) were active.
    assert out["unisolated_ok"] and "userns" not in out["unisolated_layers"]
    assert "rlimits" in out["unisolated_layers"] and "audit" in out["unisolated_layers"]


if __name__ == "__main__":
    main(sys.argv[1:])
