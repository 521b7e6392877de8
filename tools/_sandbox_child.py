"""Bootstrap of the Python sandbox: the main script of the confined child interpreter.

Started by :mod:`tools.sandbox` as ``python -I -B -X utf8 _sandbox_child.py CONFIG_JSON`` with
the user's code on stdin. It uses only the standard library and runs, in order:

1. read the code, then confine the process at the kernel level (when the OS allows it):
   new network namespace (no interfaces), new mount namespace with a minimal ``chroot``
   (Python's installation and system libraries read-only, the workspace read-write, a
   private size-capped ``/tmp``, nothing else: no repository, no data directory, no
   ``/etc/passwd``, no ``/proc``), then drop to uid/gid ``nobody`` (so no capabilities,
   and ``RLIMIT_NPROC`` binds) with ``no_new_privs``;
2. set resource limits (CPU, address space, file size, open files, processes, no core);
3. install an audit hook (PEP 578) that refuses network use, process creation, ``ctypes``
   native calls, tracing/gc introspection, and file access outside the workspace (reads
   of the Python installation are allowed). It turns violations into a clear
   ``PermissionError`` and a marker line on stderr the parent turns into a reason;
4. run the code (or a workspace file) as ``__main__``.

Audit hooks are not a security boundary on their own (CPython's docs say so); the
kernel layers are what make the guarantees hold when the hook is bypassed. The hook
gives clear, early refusals and still guards the fallback when namespaces are refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import stat
import sys
from collections.abc import Callable

MARK = "\x1esandbox:"  # prefix of status lines the parent strips from stderr
NOBODY = 65534
SETUP_FAILED = 125  # exit code when confinement was required but could not be set up

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")


def _emit(kind: str, text: str) -> None:
    # os.write on fd 2 raises no audit event and bypasses sys.stderr replacements.
    with contextlib.suppress(OSError):
        os.write(2, f"{MARK}{kind} {text}\n".encode("utf-8", "replace"))


# -- kernel confinement ----------------------------------------------------------------


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        self.lib.unshare.argtypes = [ctypes.c_int]
        self.lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags), "unshare")

    def mount(
        self, src: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        enc = os.fsencode
        rc = self.lib.mount(
            enc(src) if src else None,
            enc(target),
            enc(fstype) if fstype else None,
            flags,
            enc(data) if data else None,
        )
        self._check(rc, f"mount {target}")

    def no_new_privs(self) -> None:
        self._check(self.lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def _python_roots() -> list[str]:
    """Directories of the running Python installation (stdlib, site-packages)."""
    roots = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return _outermost(r for r in roots if os.path.isdir(r))


def _outermost(paths: object) -> list[str]:
    """Drop paths nested inside another path of the set."""
    out: list[str] = []
    for p in sorted(set(paths), key=lambda s: (s.count("/"), s)):  # type: ignore[call-overload]
        if p == "/":
            continue
        if not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def _traversable_by_others(path: str) -> bool:
    """Whether an unprivileged user can reach ``path`` (x bit for others on every ancestor)."""
    cur = "/"
    for part in path.strip("/").split("/"):
        cur = os.path.join(cur, part)
        try:
            if not os.stat(cur).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _build_chroot(libc: _Libc, ws: str, tmp_mb: int) -> None:
    """Inside a fresh mount namespace, chroot into a minimal tree (see module docstring)."""
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # never propagate to the host
    ro_dirs = _outermost(
        [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)] + _python_roots()
    )
    links = {d: os.readlink(d) for d in (*SYSTEM_DIRS, "/bin", "/sbin") if os.path.islink(d)}
    files = [f for f in ETC_FILES if os.path.exists(f)]
    devices = [d for d in DEVICES if os.path.exists(d)]
    # Open sources after unshare (a bind source must live in this namespace) and before
    # /tmp is covered (the workspace may live under it).
    fds: dict[str, int] = {}
    try:
        for path in [*ro_dirs, *files, *devices, ws]:
            fds[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        root = "/tmp"
        libc.mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        # The private /tmp first: binds of paths under /tmp (a virtualenv or workspace in a
        # checkout under /tmp) then sit on top of it instead of being hidden by it.
        os.makedirs(root + "/tmp", exist_ok=True)
        libc.mount(
            "tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777"
        )
        for path in ro_dirs:
            _bind(libc, fds[path], root + path, is_dir=True, readonly=True)
        for path in files:
            _bind(libc, fds[path], root + path, is_dir=False, readonly=True)
        for path in devices:
            # Writes to character devices are allowed on read-only mounts.
            _bind(libc, fds[path], root + path, is_dir=False, readonly=True)
        for path, target in links.items():
            if not os.path.lexists(root + path):
                os.symlink(target, root + path)
        _bind(libc, fds[ws], root + ws, is_dir=True, readonly=False)
    finally:
        for fd in fds.values():
            os.close(fd)
    os.chdir(root)
    os.chroot(".")
    os.chdir("/")
    libc.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def _bind(libc: _Libc, fd: int, target: str, *, is_dir: bool, readonly: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    libc.mount(f"/proc/self/fd/{fd}", target, None, MS_BIND, None)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (MS_RDONLY if readonly else 0)
    if is_dir:
        flags |= MS_NODEV
    libc.mount(None, target, None, flags, None)


def _drop_privileges() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # all uids non-zero: capabilities are cleared


def _set_limits(lim: dict[str, int]) -> None:
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["max_file_mb"] * mb, lim["max_file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["max_open_files"], lim["max_open_files"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["max_processes"], lim["max_processes"]))
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory_mb"] * mb, lim["memory_mb"] * mb))


def _confine(cfg: dict[str, object]) -> tuple[list[str], bool]:
    """Apply the kernel layers; return (layers applied, whether /tmp is private)."""
    ws = str(cfg["workspace"])
    layers: list[str] = []
    private_tmp = False
    is_root = os.geteuid() == 0
    libc: _Libc | None = None
    try:
        libc = _Libc()
    except OSError:
        libc = None
    if libc is not None and cfg.get("namespaces", True):
        for flags, names in (
            (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, ["netns", "mountns", "pidns"]),
            (CLONE_NEWNET | CLONE_NEWNS, ["netns", "mountns"]),
            (CLONE_NEWNET, ["netns"]),
        ):
            try:
                libc.unshare(flags)
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS):
                    raise
                continue
            layers += names
            break
    if "mountns" in layers and libc is not None:
        _build_chroot(libc, ws, int(cfg["tmp_mb"]))  # type: ignore[call-overload]
        layers.append("chroot")
        private_tmp = True
    os.chdir(ws)
    if is_root:
        # Outside a chroot, nobody must still reach Python and the workspace.
        reachable = "chroot" in layers or all(
            _traversable_by_others(p) for p in [*_python_roots(), ws]
        )
        if reachable:
            _drop_privileges()
            layers.append("uid:nobody")
    if libc is not None:
        try:
            libc.no_new_privs()
            layers.append("no_new_privs")
        except OSError:
            pass
    limits = dict(cfg["limits"])  # type: ignore[call-overload]
    if "pidns" in layers:
        limits["max_processes"] += 2  # this bootstrap and the namespace's init also count
    _set_limits(limits)
    layers.append("rlimits")
    return layers, private_tmp


# -- audit hook ------------------------------------------------------------------------


class SandboxViolation(PermissionError):
    """Raised inside the sandbox when the policy refuses an operation."""


_DENY_ALWAYS = {
    "os.fork": "creating processes (os.fork)",
    "os.forkpty": "creating processes (os.forkpty)",
    "os.system": "running shell commands (os.system)",
    "os.exec": "running programs (os.exec*)",
    "os.posix_spawn": "creating processes (os.posix_spawn)",
    "os.spawn": "creating processes (os.spawn*)",
    "subprocess.Popen": "running programs (subprocess)",
    "pty.spawn": "creating processes (pty.spawn)",
    "os.kill": "sending signals (os.kill)",
    "os.killpg": "sending signals (os.killpg)",
    "signal.pthread_kill": "sending signals",
    "socket.connect": "network access (socket.connect)",
    "socket.bind": "network access (socket.bind)",
    "socket.sendto": "network access (socket.sendto)",
    "socket.sendmsg": "network access (socket.sendmsg)",
    "socket.getaddrinfo": "network access (DNS lookup)",
    "socket.gethostbyname": "network access (DNS lookup)",
    "socket.gethostbyname_ex": "network access (DNS lookup)",
    "socket.gethostbyaddr": "network access (DNS lookup)",
    "socket.getnameinfo": "network access (DNS lookup)",
    "socket.sethostname": "changing the host name",
    "ctypes.dlsym": "native code via ctypes",
    "ctypes.dlsym/handle": "native code via ctypes",
    "ctypes.cdata": "raw memory access via ctypes",
    "ctypes.call_function": "native code via ctypes",
    "ctypes.PyObj_FromPtr": "raw memory access via ctypes",
    "ctypes.string_at": "raw memory access via ctypes",
    "ctypes.wstring_at": "raw memory access via ctypes",
    "sys.settrace": "tracing hooks (sys.settrace)",
    "sys.setprofile": "profiling hooks (sys.setprofile)",
    "sys._current_frames": "inspecting other threads' frames",
    "gc.get_objects": "heap introspection (gc.get_objects)",
    "gc.get_referrers": "heap introspection (gc.get_referrers)",
    "gc.get_referents": "heap introspection (gc.get_referents)",
}
_WRITE_PATH_EVENTS = {  # event -> indexes of path arguments that are written
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
}
_READ_PATH_EVENTS = {"os.listdir": 0, "os.scandir": 0, "os.listxattr": 0, "os.getxattr": 0}


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _install_hook(ws: str, extra_rw: tuple[str, ...]) -> None:
    """Install the policy hook. Its state is immutable and only reachable from the hook."""
    write_roots = (ws, *extra_rw, "/dev/null", "/dev/zero", "/dev/full")
    # Ancestors of the workspace that lie inside a writable root (e.g. a workspace under a
    # private /tmp) are mount skeleton, not scratch space: refuse creating entries there.
    skeleton = frozenset(a for a in _ancestors(ws) if any(a.startswith(r + "/") for r in extra_rw))
    read_roots = (*write_roots, *_python_roots(), *DEVICES)
    deny_always = dict(_DENY_ALWAYS)
    write_events = dict(_WRITE_PATH_EVENTS)
    read_events = dict(_READ_PATH_EVENTS)
    realpath, fspath, getcwd = os.path.realpath, os.fspath, os.getcwd
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    af_unix = 1
    reported: set[str] = set()

    def inside(path: object, roots: tuple[str, ...]) -> tuple[bool, str]:
        if path is None:
            path = getcwd()
        if isinstance(path, int):
            return True, ""  # an already-open descriptor
        p = fspath(path)  # type: ignore[call-overload]
        if isinstance(p, bytes):
            p = os.fsdecode(p)
        real = realpath(p)
        for root in roots:
            if real == root or real.startswith(root + "/"):
                return True, real
        return False, real

    def deny(what: str) -> None:
        if what not in reported and len(reported) < 20:
            reported.add(what)
            _emit("blocked", what)
        raise SandboxViolation(f"blocked by sandbox policy: {what}")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                writing = any(c in mode for c in "wax+")
            else:
                writing = bool(isinstance(flags, int) and flags & write_flags)
            ok, real = inside(path, write_roots if writing else read_roots)
            if writing and ok and real.rsplit("/", 1)[0] in skeleton:
                ok = False
            if not ok:
                verb = "writing" if writing else "reading"
                deny(f"{verb} {real!r} (outside the workspace)")
        elif event in deny_always:
            deny(deny_always[event])
        elif event in write_events:
            for i in write_events[event]:
                if i < len(args):
                    ok, real = inside(args[i], write_roots)
                    if ok and real.rsplit("/", 1)[0] in skeleton:
                        ok = False
                    if not ok:
                        deny(f"modifying {real!r} (outside the workspace)")
        elif event in read_events:
            ok, real = inside(args[read_events[event]] if args else None, read_roots)
            if not ok:
                deny(f"listing {real!r} (outside the workspace)")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] != af_unix:
                deny("network access (creating an internet socket)")
        elif event == "ctypes.dlopen" and args and args[0] is not None:
            deny(f"loading native library {args[0]!r} via ctypes")

    sys.addaudithook(hook)


# -- running the user's code -----------------------------------------------------------


def _run_user(code: str, filename: str | None) -> None:
    import builtins
    import linecache
    import traceback
    import types

    try:
        if filename:
            import runpy

            sys.argv = [filename]
            runpy.run_path(filename, run_name="__main__")
        else:
            name = "<run_python>"
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)
            main = types.ModuleType("__main__")
            main.__dict__["__builtins__"] = builtins
            sys.modules["__main__"] = main
            sys.argv = ["-c"]
            exec(compile(code, name, "exec"), main.__dict__)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # Hide this bootstrap's and runpy's frames: the model only needs its own code.
        hidden = {__file__, "<frozen runpy>", getattr(sys.modules.get("runpy"), "__file__", "")}
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__, lookup_lines=False)
        lib = tuple(r + "/" for r in _python_roots())
        seen: set[int] = set()
        todo = [te]
        while todo:
            cur = todo.pop()
            if id(cur) in seen:
                continue
            seen.add(id(cur))
            kept = [f for f in cur.stack if f.filename not in hidden]
            # Library internals add little for the model: keep its own frames + the last.
            kept = [
                f
                for i, f in enumerate(kept)
                if i == len(kept) - 1 or not f.filename.startswith(lib)
            ]
            cur.stack = traceback.StackSummary.from_list(kept)
            todo += [c for c in (cur.__cause__, cur.__context__) if c is not None]
        with contextlib.suppress(Exception):
            sys.stdout.flush()  # os._exit skips the flush Python does at a normal exit
        sys.stderr.write("".join(te.format()))
        sys.stderr.flush()
        os._exit(1)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    code = sys.stdin.buffer.read().decode("utf-8", "replace")
    ws = os.path.realpath(str(cfg["workspace"]))
    cfg["workspace"] = ws
    try:
        layers, private_tmp = _confine(cfg)
    except Exception as exc:  # fail closed: never run code half-confined
        _emit("setup-failed", f"{type(exc).__name__}: {exc}")
        os._exit(SETUP_FAILED)
    tmp = "/tmp" if private_tmp else os.path.join(ws, ".tmp")
    os.makedirs(tmp, exist_ok=True)
    os.environ["TMPDIR"] = tmp
    sys.dont_write_bytecode = True  # never try to write .pyc files next to the stdlib
    roots = (ws, *_python_roots())
    sys.path[:] = [ws] + [
        p for p in sys.path if any(p == r or p.startswith(r + "/") for r in roots)
    ]
    sys.path_importer_cache.clear()
    if cfg.get("audit", True):
        layers.append("audit")  # installed right before the code runs (it forbids fork)
    _emit("layers", json.dumps(layers))
    if "pidns" in layers:
        _run_in_pid_namespace(lambda: _start(code, cfg, ws, tmp))
    else:
        _start(code, cfg, ws, tmp)


def _start(code: str, cfg: dict[str, object], ws: str, tmp: str) -> None:
    if cfg.get("audit", True):
        _install_hook(ws, (tmp,))
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives for the whole process
    _run_user(code, str(cfg.get("filename") or "") or None)


def _run_in_pid_namespace(start: Callable[[], None]) -> None:
    """Run ``start`` as pid 2 of the new PID namespace under a minimal init (pid 1).

    When init exits, the kernel kills every process left in the namespace, so nothing
    the code started (even a detached daemon) outlives the run. Init reports the code's
    exit status to the parent as a marker line.
    """
    init = os.fork()  # the first child after unshare(CLONE_NEWPID) is its pid 1
    if init:
        _, status = os.waitpid(init, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
    worker = os.fork()
    if worker == 0:
        start()
        raise SystemExit(0)  # a normal interpreter exit flushes stdout/stderr
    while True:
        try:
            pid, status = os.wait()  # also reaps orphans re-parented to init
        except ChildProcessError:
            os._exit(1)
        if pid == worker:
            break
    if os.WIFSIGNALED(status):
        _emit("status", f"signal {os.WTERMSIG(status)}")
        os._exit(128 + os.WTERMSIG(status))
    _emit("status", f"exit {os.WEXITSTATUS(status)}")
    os._exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
