"""Bootstrap of the Python sandbox: the main script of the confined child interpreter.

Started by :mod:`tools.sandbox` as ``python -I -B -X utf8 _sandbox_child.py CONFIG_JSON``
with the user's code on stdin and a *report* descriptor (``CONFIG["report_fd"]``): the
write end of a pipe only the parent reads. Everything the parent trusts (the isolation
layers, the exit status, check results, a refusal) travels on that pipe; the process that
runs the user's code closes it before the code starts, so nothing the code prints or
writes can forge a result. Standard library only. Modes (``CONFIG["mode"]``):

``userns``
    ``unshare`` a user namespace together with mount, PID, network, IPC and UTS
    namespaces. Unprivileged callers map their own uid to uid 1000 inside; root has a
    helper it forked beforehand map uid 0 to 0 (setup only) and uid 1000 to ``nobody``
    (the code). Then pid 1 of the new PID namespace (the *monitor*) ``chroot``s into a
    tmpfs holding read-only binds of the interpreter and system libraries, the
    workspace (read-write), a private size-capped ``/tmp`` and a few devices: no
    ``/proc``, no ``/etc/passwd``, no repository, no data directory. The *worker* it
    forks drops to uid 1000 with no capabilities, ``no_new_privs`` and rlimits, closes
    the report pipe, installs the audit hook and runs the code. When the kernel refuses
    the user namespace, the child reports ``refused`` and exits without running code.
``bwrap``
    bubblewrap already built the namespaces and the view; this bootstrap adds the
    monitor/worker split, rlimits, ``no_new_privs`` and the audit hook.
``none``
    no namespaces (only with ``sandbox.allow_unisolated``): rlimits, ``no_new_privs``,
    the audit hook and, for root, uid ``nobody`` when the interpreter is reachable.

The audit hook (PEP 578) refuses network use, process creation, ``ctypes``, tracing and
file access outside the workspace early and with a clear message (a ``blocked`` line on
stderr). It is not a security boundary (CPython's docs say so): the namespaces are.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import posix
import resource
import select
import signal
import stat
import sys
import time
from collections.abc import Callable

MARK = "\x1esandbox:"  # prefix of the (advisory) lines the audit hook writes to stderr
SANDBOX_ID = 1000  # uid and gid of the code inside the user namespace
NOBODY = 65534  # what root maps the code's uid to outside
SETUP_FAILED = 125  # exit code when confinement could not be set up

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
USERNS_FLAGS = (
    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
)
USERNS_LAYERS = ["userns", "mountns", "pidns", "netns", "ipcns", "utsns"]
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# statvfs f_flag bit -> mount flag: a bind remount inside a user namespace must keep the
# source mount's locked flags, or the kernel refuses it.
_LOCKED_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME,
                 2048: MS_NODIRATIME, 4096: MS_RELATIME}  # fmt: skip
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_VERSION_3 = 0x20080522
REFUSED_ERRNOS = (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS, errno.ENOSYS)

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")


class Report:
    """The trusted channel to the parent: one JSON object per line."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, kind: str, **fields: object) -> None:
        if self.fd is None:
            return
        line = json.dumps({"kind": kind, **fields}) + "\n"
        with contextlib.suppress(OSError):
            os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class Refused(Exception):
    """The kernel refused an isolation layer; the code must not run."""


def _emit(kind: str, text: str) -> None:
    # os.write on fd 2 raises no audit event and bypasses sys.stderr replacements.
    with contextlib.suppress(OSError):
        os.write(2, f"{MARK}{kind} {text}\n".encode("utf-8", "replace"))


# -- kernel interfaces -----------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        self.lib.unshare.argtypes = [ctypes.c_int]
        self.lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        self.lib.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.lib.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

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

    def prctl(self, option: int, arg: int, what: str) -> None:
        self._check(self.lib.prctl(option, arg, 0, 0, 0), what)

    def drop_bounding_set(self) -> None:
        """Empty the capability bounding set (needs CAP_SETPCAP: call it before setuid)."""
        for cap in range(64):
            if self.lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                if ctypes.get_errno() == errno.EINVAL:  # past the last capability
                    break
                self._check(-1, f"prctl(CAPBSET_DROP, {cap})")

    def drop_capabilities(self) -> None:
        """Empty the effective, permitted and inheritable capability sets."""
        header = _CapHeader(CAP_VERSION_3, 0)
        data = (_CapData * 2)()
        self._check(self.lib.capset(ctypes.byref(header), ctypes.byref(data)), "capset")

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self.lib.sethostname(raw, len(raw)), "sethostname")


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


# -- userns mode -----------------------------------------------------------------------


def _enter_user_namespace(libc: _Libc) -> None:
    """Unshare every namespace; on return this process is uid 0 or 1000 inside, with caps.

    Raises :class:`Refused` when the kernel will not create the user namespace.
    """
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    helper = _map_helper() if outer_uid == 0 else None
    try:
        libc.unshare(USERNS_FLAGS)
    except OSError as err:
        if helper is not None:
            os.close(helper[1])
            os.waitpid(helper[0], 0)
        if err.errno in REFUSED_ERRNOS:
            name = errno.errorcode.get(err.errno or 0, str(err.errno))
            raise Refused(
                f"the kernel refused a user namespace (unshare(CLONE_NEWUSER): {name}, "
                f"{os.strerror(err.errno or 0)})"
            ) from None
        raise
    if helper is not None:
        pid, go = helper
        os.write(go, b"x")
        os.close(go)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise OSError(errno.EPERM, "root could not write the uid/gid maps (no CAP_SETUID?)")
    else:
        _write(f"/proc/{os.getpid()}/setgroups", "deny")
        _write(f"/proc/{os.getpid()}/uid_map", f"{SANDBOX_ID} {outer_uid} 1\n")
        _write(f"/proc/{os.getpid()}/gid_map", f"{SANDBOX_ID} {outer_gid} 1\n")


def _map_helper() -> tuple[int, int]:
    """Root: fork a process that stays outside and writes the child's maps on request.

    After ``unshare`` a process has no capabilities in its parent namespace, so it can
    map only its own uid; root maps 0->0 (setup) and 1000->nobody (the code) instead,
    so the code never runs as the real root (root is exempt from RLIMIT_NPROC).
    """
    target = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(r)
        return pid, w
    os.close(w)
    ok = 1
    try:
        if os.read(r, 1) == b"x":
            ids = f"0 0 1\n{SANDBOX_ID} {NOBODY} 1\n"
            _write(f"/proc/{target}/uid_map", ids)
            _write(f"/proc/{target}/gid_map", ids)
            ok = 0
    except OSError as err:
        _emit("note", f"uid map: {err}")
    os._exit(ok)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _build_chroot(libc: _Libc, ws: str, tmp_mb: int) -> None:
    """Inside the new mount namespace, chroot into a minimal tree (see module docstring)."""
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # never propagate to the host
    ro_dirs = _outermost(
        [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)] + _python_roots()
    )
    links = {d: os.readlink(d) for d in (*SYSTEM_DIRS, "/bin", "/sbin") if os.path.islink(d)}
    files = [f for f in ETC_FILES if os.path.exists(f)]
    devices = [d for d in DEVICES if os.path.exists(d)]
    # Open the sources before /tmp is covered (the workspace may live under it).
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
    source = f"/proc/self/fd/{fd}"
    locked = os.statvfs(source).f_flag
    libc.mount(source, target, None, MS_BIND, None)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (MS_RDONLY if readonly else 0)
    flags |= sum(ms for st, ms in _LOCKED_FLAGS.items() if locked & st)
    if is_dir:
        flags |= MS_NODEV
    libc.mount(None, target, None, flags, None)


# -- the worker's own confinement ------------------------------------------------------


def _set_limits(lim: dict[str, int]) -> None:
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["max_file_mb"] * mb, lim["max_file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["max_open_files"], lim["max_open_files"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["max_processes"], lim["max_processes"]))
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory_mb"] * mb, lim["memory_mb"] * mb))


def _nobody_can_run(ws: str) -> bool:
    return all(_traversable_by_others(p) for p in [*_python_roots(), ws])


def _drop_to(uid: int) -> None:
    with contextlib.suppress(PermissionError):  # refused after "setgroups deny": none held
        os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _confine_worker(mode: str, libc: _Libc | None, cfg: dict[str, object]) -> list[str]:
    """Drop identity and privileges and set limits; return the layers applied."""
    layers: list[str] = []
    root_mapped = os.getuid() == 0  # root's setup runs as uid 0, not as the code's uid
    if mode == "userns":
        assert libc is not None
        libc.drop_bounding_set()
        _drop_to(SANDBOX_ID)
        libc.drop_capabilities()
        layers += ["uid:sandbox", "no_caps"]
    elif mode == "bwrap" and os.getuid() == SANDBOX_ID:
        layers.append("uid:sandbox")  # bwrap --uid; it also dropped every capability
    elif mode == "none" and os.geteuid() == 0 and _nobody_can_run(str(cfg["workspace"])):
        _drop_to(NOBODY)
        layers.append("uid:nobody")
    if libc is not None:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(NO_NEW_PRIVS)")
        layers.append("no_new_privs")
    limits = dict(cfg["limits"])  # type: ignore[call-overload]
    if mode == "userns" and not root_mapped:
        limits["max_processes"] += 2  # the bootstrap and the monitor share the uid's count
    _set_limits(limits)
    layers.append("rlimits")
    return layers


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
    "shutil.copyfile": (1,),
    "shutil.rmtree": (0,),
}
_READ_PATH_EVENTS = {"os.listdir": 0, "os.scandir": 0, "os.listxattr": 0, "os.getxattr": 0}


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _make_realpath() -> Callable[[str], str]:
    """A ``realpath`` that uses only functions captured now.

    ``os.path.realpath`` looks up ``abspath``, ``lstat``, ``join`` … in module globals at
    call time, so code that patches them could steer the hook's path check.
    """
    lstat, readlink, getcwd, is_link = posix.lstat, posix.readlink, posix.getcwd, stat.S_ISLNK

    def resolve(path: str) -> str:
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts = [p for p in str.split(path, "/") if p and p != "."]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            cur = "/" + "/".join([*done, part])
            try:
                st = lstat(cur)
            except OSError:
                done.append(part)  # does not exist (yet): the rest is taken literally
                continue
            if is_link(st.st_mode):
                hops += 1
                if hops > 40:
                    raise PermissionError("too many symbolic links")
                target = readlink(cur)
                rest = [p for p in str.split(target, "/") if p and p != "."]
                if target.startswith("/"):
                    done = []
                parts = rest + parts
                continue
            done.append(part)
        return "/" + "/".join(done)

    return resolve


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
    realpath, fspath, getcwd = _make_realpath(), posix.fspath, posix.getcwd
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
            p = bytes.decode(p, "utf-8", "surrogateescape")
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

    def writes_ok(path: object) -> tuple[bool, str]:
        ok, real = inside(path, write_roots)
        if ok and real.rsplit("/", 1)[0] in skeleton:
            ok = False
        return ok, real

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                writing = any(c in mode for c in "wax+")
            else:
                writing = bool(isinstance(flags, int) and flags & write_flags)
            ok, real = writes_ok(path) if writing else inside(path, read_roots)
            if not ok:
                verb = "writing" if writing else "reading"
                deny(f"{verb} {real!r} (outside the workspace)")
        elif event in deny_always:
            deny(deny_always[event])
        elif event in write_events:
            for i in write_events[event]:
                if i < len(args):
                    ok, real = writes_ok(args[i])
                    if not ok:
                        deny(f"modifying {real!r} (outside the workspace)")
        elif event in read_events:
            ok, real = inside(args[read_events[event]] if args else None, read_roots)
            if not ok:
                deny(f"listing {real!r} (outside the workspace)")
        elif event == "sqlite3.connect":
            db = args[0] if args else ":memory:"
            if isinstance(db, bytes):
                db = bytes.decode(db, "utf-8", "surrogateescape")
            if isinstance(db, str) and db not in ("", ":memory:"):
                if db.startswith("file:"):
                    db = str.split(db[5:], "?", 1)[0] or ":memory:"
                if db != ":memory:":
                    ok, real = writes_ok(db)
                    if not ok:
                        deny(f"opening database {real!r} (outside the workspace)")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] != af_unix:
                deny("network access (creating an internet socket)")
        elif event == "ctypes.dlopen" and args and args[0] is not None:
            deny(f"loading native library {args[0]!r} via ctypes")

    sys.addaudithook(hook)


# -- running the user's code -----------------------------------------------------------


def _clean_traceback(exc: BaseException) -> str:
    """The traceback without this bootstrap's and runpy's frames (the model needs its own)."""
    import traceback

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
            f for i, f in enumerate(kept) if i == len(kept) - 1 or not f.filename.startswith(lib)
        ]
        cur.stack = traceback.StackSummary.from_list(kept)
        todo += [c for c in (cur.__cause__, cur.__context__) if c is not None]
    return "".join(te.format())


def _run_user(code: str, filename: str | None) -> None:
    import builtins
    import linecache
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
        text = _clean_traceback(exc)
        with contextlib.suppress(Exception):
            sys.stdout.flush()  # os._exit skips the flush Python does at a normal exit
        sys.stderr.write(text)
        sys.stderr.flush()
        os._exit(1)


def _run_check(source: str, check: str | None, err_fd: int) -> None:
    """In a fresh process: load the solution, then run one check (None = load only)."""
    import builtins

    ns: dict[str, object] = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(source, "solution.py", "exec"), ns)
        if check is not None:
            exec(compile(check, "hidden_test", "exec"), dict(ns))
    except BaseException as exc:  # every failure, SystemExit included, is a result
        with contextlib.suppress(OSError):
            os.write(err_fd, (type(exc).__name__ + ": " + str(exc))[:300].encode())
        status = 1
    else:
        status = 0
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


# -- process structure -----------------------------------------------------------------


def main() -> None:
    cfg = json.loads(sys.argv[1])
    report = Report(cfg.get("report_fd"))
    code = sys.stdin.buffer.read().decode("utf-8", "replace")
    mode = str(cfg.get("mode", "userns"))
    ws = os.path.realpath(str(cfg["workspace"]))
    cfg["workspace"] = ws
    libc: _Libc | None = None
    layers: list[str] = []
    try:
        try:
            libc = _Libc()
        except OSError:
            if mode == "userns":
                raise Refused("libc is not loadable (no unshare/mount)") from None
        if mode == "userns":
            assert libc is not None
            _enter_user_namespace(libc)
            layers += USERNS_LAYERS
            monitor = os.fork()  # the first child after unshare(CLONE_NEWPID) is its pid 1
            if monitor:
                report.close()
                _, status = os.waitpid(monitor, 0)
                os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else SETUP_FAILED)
            _build_chroot(libc, ws, int(cfg["tmp_mb"]))
            layers.append("chroot")
            with contextlib.suppress(OSError):
                libc.sethostname("sandbox")
        elif mode == "bwrap":
            layers += ["bwrap", *USERNS_LAYERS, "pivot_root"]  # bwrap's own view
        os.chdir(ws)
        if libc is not None:  # the worker (same uid in bwrap/none mode) may not ptrace us
            libc.prctl(PR_SET_DUMPABLE, 0, "prctl(SET_DUMPABLE)")
    except Refused as exc:
        report.send("refused", reason=str(exc))
        os._exit(SETUP_FAILED)
    except Exception as exc:  # fail closed: never run code half-confined
        report.send("setup-failed", reason=f"{type(exc).__name__}: {exc}")
        os._exit(SETUP_FAILED)
    _monitor(report, lambda: _worker(cfg, mode, libc, layers, report, code, ws))


def _monitor(report: Report, worker: Callable[[], None]) -> None:
    """Fork the worker and report its exit status on the trusted channel.

    In userns mode this process is pid 1 of the PID namespace: when it exits, the kernel
    kills whatever the code left behind.
    """
    pid = os.fork()
    if pid == 0:
        worker()
        raise SystemExit(0)  # a normal interpreter exit flushes stdout/stderr
    while True:
        try:
            done, status = os.wait()  # also reaps orphans re-parented to pid 1
        except ChildProcessError:
            report.send("setup-failed", reason="the worker vanished")
            os._exit(SETUP_FAILED)
        if done == pid:
            break
    if os.WIFSIGNALED(status):
        report.send("status", signal=os.WTERMSIG(status))
    else:
        report.send("status", exit=os.WEXITSTATUS(status))
    report.close()
    os._exit(0)


def _worker(
    cfg: dict[str, object],
    mode: str,
    libc: _Libc | None,
    layers: list[str],
    report: Report,
    code: str,
    ws: str,
) -> None:
    try:
        layers = layers + _confine_worker(mode, libc, cfg)
        private_tmp = mode in ("userns", "bwrap")
        tmp = "/tmp" if private_tmp else os.path.join(ws, ".tmp")
        os.makedirs(tmp, exist_ok=True)
        os.environ["TMPDIR"] = tmp
        sys.dont_write_bytecode = True  # never try to write .pyc files next to the stdlib
        roots = (ws, *_python_roots())
        sys.path[:] = [ws] + [
            p for p in sys.path if any(p == r or p.startswith(r + "/") for r in roots)
        ]
        sys.path_importer_cache.clear()
        audit = bool(cfg.get("audit", True))
        if audit:
            layers.append("audit")  # installed right before the code runs (it forbids fork)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives for the whole process
    except Exception as exc:
        report.send("setup-failed", reason=f"{type(exc).__name__}: {exc}")
        os._exit(SETUP_FAILED)
    report.send("layers", layers=layers)
    checks = cfg.get("checks")
    if isinstance(checks, list):
        _run_checks(report, code, checks, float(str(cfg.get("check_timeout_s", 3))), ws, tmp, audit)
    report.close()  # from here on nothing this process writes is trusted
    if audit:
        _install_hook(ws, (tmp,))
    _run_user(code, str(cfg.get("filename") or "") or None)


def _run_checks(
    report: Report, source: str, checks: list[str], timeout_s: float, ws: str, tmp: str, audit: bool
) -> None:
    """Harness mode: load + each check in its own process; results on the trusted channel."""
    results: list[str | None] = []
    load_error = None
    for check in [None, *checks]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            report.close()
            if audit:
                _install_hook(ws, (tmp,))
            _run_check(source, check, w)
        os.close(w)
        error = _wait_check(pid, r, timeout_s)
        if check is None:
            load_error = error
        else:
            results.append(error)
    report.send("checks", load_error=load_error, results=results)
    report.close()
    os._exit(0)


def _wait_check(pid: int, err_fd: int, timeout_s: float) -> str | None:
    """Wait for one check process; its error text, or None when it passed."""
    deadline = time.monotonic() + timeout_s
    text = bytearray()
    status: int | None = None
    watch = [err_fd]
    try:
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"TimeoutError: check took longer than {timeout_s:g}s"
            ready, _, _ = select.select(watch, [], [], min(left, 0.05)) if watch else ([], 0, 0)
            if not watch:
                time.sleep(min(left, 0.02))
            if ready:
                data = os.read(err_fd, 4096)
                if not data:
                    watch = []  # closed: only the exit status is left to wait for
                text += data[: max(0, 4096 - len(text))]
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        os.set_blocking(err_fd, False)
        with contextlib.suppress(OSError):  # whatever it wrote just before exiting
            text += os.read(err_fd, 4096)[: max(0, 4096 - len(text))]
    finally:
        os.close(err_fd)
    message = text.decode("utf-8", "replace")[:300]
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    if os.WIFSIGNALED(status):
        return message or f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return message or f"exit code {os.WEXITSTATUS(status)}"


if __name__ == "__main__":
    main()
