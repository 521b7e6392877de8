"""Serving the embedded model: xllamacpp (llama.cpp's native server) vs llama-cpp-python.

Same GGUF, same threads, same prompts, the two servers alternated in every round:

- single stream: prefill tok/s (prompt tokens / time to first token) and decode tok/s
  (streamed chunks after the first / time after the first), one ≈500-token prompt;
- 4 concurrent requests (≈500-token prompts, up to 256 tokens each), cold (every prompt new)
  and cached (the same four agents' prompts sent again): wall time of the batch;
- prompt cache with agents interleaving: A (≈1,400 tokens), an unrelated request, then B
  sharing A's prefix (a new final question): B's time to first token vs A's (cold).

xllamacpp is started through ``core.models.local_server.ensure_server`` (the product's path:
watchdog, ``llama_host``, ``n_parallel`` slots); llama-cpp-python with the old command line
(``python -m llama_cpp.server``), from ``--old-python`` (a venv where it was built, e.g.
``pip install 'agent-orchestrator[bench]'``); skipped when not importable. Prompt token counts
are xllamacpp's (same GGUF and chat template). Also measured: the RSS of each server.

    .venv/bin/python -m benchmarks.serving [--rounds 3] [--old-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import median, print_table, write_results
from core.models.gguf import ensure_gguf
from core.models.local_server import ensure_server, stop_server
from core.settings import Settings

SLOTS = 4
CTX_PER_SLOT = 8192
SECTION = (
    "You are the {role} agent of a software team. Follow the team's rules exactly. "
    "Rule {i}: keep every answer factual, cite the task you rely on, never invent file names, "
    "prefer short functions with docstrings and type hints, write tests for each behaviour, "
    "and report what you could not do instead of guessing. "
)


def agent_prompt(role: str, sections: int) -> str:
    """A stable system prompt of about 45 tokens per section."""
    return "".join(SECTION.format(role=role, i=i) for i in range(sections))


@dataclass
class Server:
    """One OpenAI-compatible server under test."""

    name: str
    base_url: str
    api_key: str
    pid: int
    cache_ids: bool
    """Whether the server reports usage when streaming (xllamacpp) — else chunks are counted."""

    def rss_mib(self) -> dict[str, float]:
        """Current and peak RSS of the serving process (MiB)."""
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        fields = {line.split(":")[0]: line.split()[1] for line in status if line[:5] in ("VmRSS", "VmHWM")}
        return {"rss_mib": int(fields["VmRSS"]) / 1024, "peak_rss_mib": int(fields["VmHWM"]) / 1024}


@dataclass
class Stream:
    """One streamed completion, timed."""

    ttft_s: float
    total_s: float
    chunks: int
    prompt_tokens: int | None
    cached_tokens: int | None
    completion_tokens: int | None


def stream(server: Server, system: str, user: str, max_tokens: int, client: httpx.Client) -> Stream:
    """POST a streamed chat completion; time to first content and to the end."""
    body = {
        "model": "local", "stream": True, "temperature": 0, "max_tokens": max_tokens,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }  # fmt: skip
    start = time.perf_counter()
    first: float | None = None
    chunks = 0
    usage: dict[str, Any] = {}
    # A new connection per request: llama.cpp's HTTP server closes idle keep-alive connections,
    # and a request sent on one just closed fails ("Server disconnected").
    headers = {"Authorization": f"Bearer {server.api_key}", "Connection": "close"}
    with client.stream("POST", f"{server.base_url}/chat/completions", json=body, headers=headers,
                       timeout=900) as resp:  # fmt: skip
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            usage = data.get("usage") or usage
            for choice in data.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
                    first = first or time.perf_counter()
    end = time.perf_counter()
    details = usage.get("prompt_tokens_details") or {}
    return Stream(
        ttft_s=(first or end) - start, total_s=end - start, chunks=chunks,
        prompt_tokens=usage.get("prompt_tokens"), cached_tokens=details.get("cached_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )  # fmt: skip


# -- the measurements -----------------------------------------------------------------------


def single(server: Server, client: httpx.Client) -> dict[str, Any]:
    s = stream(server, f"[{uuid.uuid4()}] " + agent_prompt("coder", 8), "Explain in detail how to "
               "write a function that merges two sorted lists, with its tests.", 128, client)  # fmt: skip
    decode_s = s.total_s - s.ttft_s
    return {"ttft_s": s.ttft_s, "prompt_tokens": s.prompt_tokens, "chunks": s.chunks,
            "decode_tok_s": (s.chunks - 1) / decode_s if decode_s > 0 else 0.0}  # fmt: skip


ROLES = ("researcher", "coder", "analyst", "writer")


def concurrent(server: Server, client: httpx.Client, prompts: list[str]) -> dict[str, Any]:
    """Four requests at once; wall time of the batch and each first token."""
    question = "Write a detailed step-by-step plan for your part of the project, at least 300 words."

    def one(system: str) -> Stream:
        return stream(server, system, question, 256, client)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(one, prompts))
    wall = time.perf_counter() - start
    return {"wall_s": wall, "ttft_s": sorted(r.ttft_s for r in results),
            "chunks": sum(r.chunks for r in results),
            "cached_tokens": sum(r.cached_tokens or 0 for r in results)}  # fmt: skip


def interleaved(server: Server, client: httpx.Client) -> dict[str, Any]:
    """A, unrelated U, then B sharing A's system prompt: first-token times."""
    shared = f"[{uuid.uuid4()}] " + agent_prompt("analyst", 21)
    a = stream(server, shared, "Summarise rule 3 in one sentence.", 16, client)
    u = stream(server, f"[{uuid.uuid4()}] " + agent_prompt("support", 8), "Say hello.", 16, client)
    b = stream(server, shared, "Summarise rule 7 in one sentence.", 16, client)
    return {"a_ttft_s": a.ttft_s, "u_ttft_s": u.ttft_s, "b_ttft_s": b.ttft_s,
            "a_prompt_tokens": a.prompt_tokens, "b_cached_tokens": b.cached_tokens,
            "b_over_a": b.ttft_s / a.ttft_s}  # fmt: skip


def round_for(server: Server, client: httpx.Client) -> dict[str, Any]:
    out: dict[str, Any] = {"single": single(server, client)}
    prompts = [f"[{uuid.uuid4()}] " + agent_prompt(role, 8) for role in ROLES]
    out["concurrent_cold"] = concurrent(server, client, prompts)
    out["concurrent_cached"] = concurrent(server, client, prompts)  # the same agents again
    out["interleaved"] = interleaved(server, client)
    out["memory"] = server.rss_mib()
    return out


# -- the servers ----------------------------------------------------------------------------


@contextmanager
def xllamacpp_server(gguf: Path, threads: int, cache_ram_mib: int) -> Iterator[Server]:
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        info = ensure_server(gguf, root, n_ctx=CTX_PER_SLOT, n_parallel=SLOTS, n_threads=threads,
                             cache_ram_mib=cache_ram_mib, grace_s=600)  # fmt: skip
        host = int(Path(f"/proc/{info.pid}/task/{info.pid}/children").read_text().split()[0])
        yield Server("xllamacpp", info.base_url, info.api_key, host, True)
    finally:
        stop_server(root)
        for log in (root / "server").glob("*.log"):  # kept: it says why a server stopped
            kept = Path(tempfile.gettempdir()) / "bench-serving-xllamacpp.log"
            shutil.copy(log, kept)
            print(f"server log: {kept}")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def old_server(python: str, gguf: Path, threads: int) -> Iterator[Server]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "local",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(CTX_PER_SLOT),
           "--n_threads", str(threads), "--n_threads_batch", str(threads),
           "--logits_all", "False", "--interrupt_requests", "False"]  # fmt: skip
    log = Path(tempfile.mkstemp(prefix="bench-old-", suffix=".log")[1])
    with log.open("wb") as fh:
        # The same OpenMP wait policy as ours (local_server sets it for the llama host).
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"llama-cpp-python server not ready; log {log}")
        yield Server("llama-cpp-python", base, "none", proc.pid, False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def old_version(python: str) -> str | None:
    code = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


# -- report ---------------------------------------------------------------------------------


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    def med(name: str, get: Callable[[dict[str, Any]], float]) -> float:
        return median([get(r) for r in rounds[name]])

    out: dict[str, dict[str, float]] = {}
    prompt = rounds["xllamacpp"][0]["single"]["prompt_tokens"] or 0
    for name in rounds:
        out[name] = {
            "prefill_tok_s": med(name, lambda r: prompt / r["single"]["ttft_s"]),
            "decode_tok_s": med(name, lambda r: r["single"]["decode_tok_s"]),
            "concurrent_cold_s": med(name, lambda r: r["concurrent_cold"]["wall_s"]),
            "concurrent_cached_s": med(name, lambda r: r["concurrent_cached"]["wall_s"]),
            "cold_ttft_s": med(name, lambda r: r["interleaved"]["a_ttft_s"]),
            "cache_hit_ttft_s": med(name, lambda r: r["interleaved"]["b_ttft_s"]),
            "cache_hit_over_cold": med(name, lambda r: r["interleaved"]["b_over_a"]),
            "peak_rss_mib": max(r["memory"]["peak_rss_mib"] for r in rounds[name]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cache-ram-mib", type=int, default=512)
    parser.add_argument("--old-python", default=sys.executable,
                        help="a Python with llama-cpp-python[server] (skipped if absent)")  # fmt: skip
    args = parser.parse_args(argv)
    gguf = ensure_gguf("local", Settings().cache_dir)
    old = old_version(args.old_python)
    rounds: dict[str, list[dict[str, Any]]] = {"xllamacpp": []}
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client())
        servers = [stack.enter_context(xllamacpp_server(gguf, args.threads, args.cache_ram_mib))]
        if old:
            rounds["llama-cpp-python"] = []
            servers.append(stack.enter_context(old_server(args.old_python, gguf, args.threads)))
        else:
            print(f"llama-cpp-python not importable from {args.old_python}: xllamacpp only")
        for i in range(args.rounds):
            order = servers if i % 2 == 0 else servers[::-1]  # alternate who goes first
            for server in order:
                print(f"round {i + 1}/{args.rounds}: {server.name}", flush=True)
                rounds[server.name].append(round_for(server, client))
                print(json.dumps(rounds[server.name][-1], default=str), flush=True)
    summary = summarize(rounds)
    ratios = {}
    if "llama-cpp-python" in summary:
        o, n = summary["llama-cpp-python"], summary["xllamacpp"]
        ratios = {
            "concurrent_cold_speedup": o["concurrent_cold_s"] / n["concurrent_cold_s"],
            "concurrent_cached_speedup": o["concurrent_cached_s"] / n["concurrent_cached_s"],
        }
    keys = list(summary["xllamacpp"])
    print_table(["server", *keys], [[name, *[round(v[k], 2) for k in keys]] for name, v in summary.items()])
    print(json.dumps(ratios, indent=2))
    path = write_results("serving", {
        "slots": SLOTS, "ctx_per_slot": CTX_PER_SLOT, "threads": args.threads,
        "cache_ram_mib": args.cache_ram_mib, "llama_cpp_python": old,
        "xllamacpp": __import__("xllamacpp").__version__, "summary": summary, "ratios": ratios,
        "rounds": rounds,
    })  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
