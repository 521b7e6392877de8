"""Deterministic values valid against a JSON schema: the test model's tool-call arguments.

Seeded by a hash of the prompt, so the same prompt always gets the same value.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import uuid
from typing import Any

__all__ = ["hash_int", "sample_from_schema"]

_WORDS = (
    "alpha", "bravo", "delta", "echo", "harbor", "lumen", "orbit", "quartz", "river", "summit",
)  # fmt: skip
_MAX_DEPTH = 8


def hash_int(text: str) -> int:
    """A stable integer of ``text`` (a seed)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def sample_from_schema(schema: dict[str, Any], seed: int | str) -> Any:
    """A deterministic value valid against a JSON schema (the subset tool schemas use).

    Handles ``$ref``/``$defs``, ``allOf``/``anyOf``/``oneOf``, ``enum``/``const``, required
    and optional properties, arrays (1-3 items within minItems/maxItems), string lengths and
    formats, numeric bounds and booleans.
    """
    rng = random.Random(seed if isinstance(seed, int) else hash_int(seed))
    return _Sampler(schema, rng).value(schema, "value", 0)


class _Sampler:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise ValueError(f"TestChatModel: only local $ref is supported, got {ref!r}")
            target: Any = self.root
            for token in ref.lstrip("#/").split("/") if ref != "#" else []:
                target = target[token.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
            if seen > 50:
                raise ValueError(f"TestChatModel: $ref cycle at {ref!r}")
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                for key, val in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **val}
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *val]
                    else:
                        merged.setdefault(key, val)
            schema = merged
        return schema

    def value(self, schema: dict[str, Any] | bool, name: str, depth: int) -> Any:
        if schema is True or schema == {}:
            return f"{name} {self.rng.choice(_WORDS)}"
        if schema is False:
            raise ValueError(f"TestChatModel: schema for {name!r} accepts no value")
        schema = self.resolve(schema)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            return copy.deepcopy(self.rng.choice(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                # Prefer a real value over null so optional fields get exercised, but fall back
                # to null when nesting gets deep (recursive schemas must terminate).
                non_null = [o for o in options if o.get("type") != "null"]
                if depth >= _MAX_DEPTH and len(non_null) < len(options):
                    return None
                return self.value(self.rng.choice(non_null or options), name, depth)
        typ = schema.get("type")
        if isinstance(typ, list):
            non_null_types = [t for t in typ if t != "null"] or ["null"]
            typ = self.rng.choice(non_null_types)
        if typ is None:
            typ = "object" if "properties" in schema else "array" if "items" in schema else "string"
        maker = getattr(self, f"make_{typ}", None)
        if maker is None:
            raise ValueError(f"TestChatModel: unsupported JSON schema type {typ!r} at {name!r}")
        return maker(schema, name, depth)

    def make_null(self, schema: dict[str, Any], name: str, depth: int) -> None:
        return None

    def make_boolean(self, schema: dict[str, Any], name: str, depth: int) -> bool:
        return self.rng.random() < 0.5

    def _bounds(self, schema: dict[str, Any], step: float) -> tuple[float, float]:
        lo = schema.get("minimum", float("-inf"))
        hi = schema.get("maximum", float("inf"))
        if "exclusiveMinimum" in schema:
            lo = max(lo, schema["exclusiveMinimum"] + step)
        if "exclusiveMaximum" in schema:
            hi = min(hi, schema["exclusiveMaximum"] - step)
        if lo == float("-inf") and hi == float("inf"):
            lo, hi = 0, 100
        elif lo == float("-inf"):
            lo = hi - 100
        elif hi == float("inf"):
            hi = lo + 100
        if lo > hi:
            raise ValueError(f"TestChatModel: empty numeric range {schema}")
        return lo, hi

    def make_integer(self, schema: dict[str, Any], name: str, depth: int) -> int:
        lo, hi = self._bounds(schema, 1)
        lo_i, hi_i = int(-(-lo // 1)), int(hi // 1)  # ceil / floor
        value = self.rng.randint(lo_i, hi_i)
        mult = schema.get("multipleOf")
        if isinstance(mult, int) and mult > 0:
            value = max(lo_i, (value // mult) * mult)
            if value % mult:
                value += mult - value % mult
        return value

    def make_number(self, schema: dict[str, Any], name: str, depth: int) -> float:
        lo, hi = self._bounds(schema, 0.01)
        value = round(self.rng.uniform(lo, hi), 2)
        return min(max(value, lo), hi)

    def make_string(self, schema: dict[str, Any], name: str, depth: int) -> str:
        fmt = schema.get("format")
        n = self.rng.randint(0, 999)
        formats = {
            "date-time": f"2024-01-{n % 28 + 1:02d}T12:00:00Z",
            "date": f"2024-01-{n % 28 + 1:02d}",
            "time": "12:00:00",
            "email": f"user{n}@example.com",
            "uri": f"https://example.com/{name}/{n}",
            "url": f"https://example.com/{name}/{n}",
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
        }
        text: str = formats.get(
            fmt or "", f"{name.replace('_', ' ')} {self.rng.choice(_WORDS)} {n}"
        )
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, text):
            text = next(
                (
                    c
                    for c in (f"{name[:1] or 'x'}{n}", "t1", "abc", "A1", "0", "x")
                    if re.search(pattern, c)
                ),
                text,
            )
        min_len, max_len = schema.get("minLength", 0), schema.get("maxLength")
        if len(text) < min_len:
            text = (text + " " + "x" * min_len)[:min_len]
        if max_len is not None:
            text = text[:max_len]
        return text

    def make_array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", max(3, lo))
        count = min(max(self.rng.randint(1, 3), lo), hi)
        if depth >= _MAX_DEPTH:
            count = lo
        items = schema.get("items", {})
        prefix = schema.get("prefixItems", [])
        item_name = name[:-1] if name.endswith("s") and len(name) > 2 else f"{name} item"
        out = []
        for i in range(max(count, len(prefix))):
            sub = prefix[i] if i < len(prefix) else items
            value = self.value(sub, item_name, depth + 1)
            if schema.get("uniqueItems") and value in out:
                continue
            out.append(value)
        return out

    def make_object(self, schema: dict[str, Any], name: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            # Required fields always; optional ones half the time (deterministically).
            if key in required or (depth < _MAX_DEPTH and self.rng.random() < 0.5):
                out[key] = self.value(sub, key, depth + 1)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and depth < _MAX_DEPTH:
            out[f"{name.replace(' ', '_')}_key"] = self.value(extra, name, depth + 1)
        for key in required - set(out):  # required but not described in properties
            out[key] = f"{key} {self.rng.choice(_WORDS)}"
        return out
