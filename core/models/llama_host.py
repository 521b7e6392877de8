"""The process that hosts llama.cpp's native HTTP server (xllamacpp), started by the watchdog.

``xllamacpp.Server(CommonParams)`` loads the GGUF and serves the OpenAI-compatible API on a
background thread of this process; the main thread only waits for SIGTERM. The server binds a
free loopback port itself (port 0, so no race with other processes picking the same port) and
this process reports it by writing ``{"port": N}`` to ``--ready-file`` once the model is
loaded. The API key comes from the environment (``ORCHESTRATOR_LLAMA_API_KEY``), never the
command line, which any user of the machine can read.

Internal: ``python -m core.models.llama_host --model-path ... --ready-file ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["API_KEY_ENV", "build_params", "main"]

API_KEY_ENV = "ORCHESTRATOR_LLAMA_API_KEY"
HOST = "127.0.0.1"


def build_params(args: argparse.Namespace, api_key: str | None) -> Any:
    """``xllamacpp.CommonParams`` for a shared, multi-slot, loopback-only server."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = args.model_path
    p.model_alias = {args.alias}
    p.hostnames = [HOST]
    p.port = 0  # the server binds a free port; we report it
    p.n_parallel = args.n_parallel
    p.n_ctx = args.n_parallel * args.ctx_per_slot  # split evenly: every slot fits a full call
    p.kv_unified = False
    p.cont_batching = True  # slots decode together, a new request joins between tokens
    p.cache_prompt = True  # a slot reuses the longest common prefix it already holds
    p.cache_ram_mib = args.cache_ram_mib  # prefixes of evicted slots kept in RAM, capped
    p.cpuparams.n_threads = args.n_threads
    p.cpuparams_batch.n_threads = args.n_threads
    p.ui = False
    p.endpoint_metrics = True
    p.endpoint_slots = True
    p.ctx_shift = False  # never silently drop the start of a prompt
    p.warmup = True
    if api_key:
        p.api_keys = [api_key]
    return p


def _write_ready(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(tmp, path)


def serve(args: argparse.Namespace) -> int:
    """Start the server, report its port, run until SIGTERM/SIGINT/SIGHUP."""
    import xllamacpp

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    params = build_params(args, os.environ.pop(API_KEY_ENV, None))
    print(
        f"llama_host {os.getpid()}: xllamacpp {xllamacpp.__version__}, {args.model_path}, "
        f"{args.n_parallel} slots x {args.ctx_per_slot} tokens, {args.n_threads} threads, "
        f"prompt cache {args.cache_ram_mib} MiB",
        flush=True,
    )
    server = xllamacpp.Server(params)  # raises if the model cannot be loaded
    address = str(server.listening_address)
    port = int(address.rsplit(":", 1)[1].split("/", 1)[0])
    _write_ready(Path(args.ready_file), port)
    print(f"llama_host: listening on {address}", flush=True)
    while not stop.wait(1.0):
        pass
    print("llama_host: stopping", flush=True)
    del server  # joins the server's main loop
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="core.models.llama_host")
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--n-parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=8192)
    parser.add_argument("--n-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache-ram-mib", type=int, default=512)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
