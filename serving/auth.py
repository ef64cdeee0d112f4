"""API keys with scopes: stored only as salted hashes, compared in constant time, never logged.

A key is a high-entropy random token (``rpn_`` + 32 random bytes, URL-safe), so one salted SHA-256 is enough
to store it safely: there is nothing to brute-force that a slow hash would protect (unlike passwords). The
salt is per deployment and lives in the key file next to the hashes (``<data_dir>/api_keys.json``, mode 0600).

Keys may also come from ``Settings.api_keys`` (scope -> comma-separated keys, e.g. from a secret manager via
``RIPEN_API_KEYS``); those are hashed in memory at start and never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import structlog
from pydantic import SecretStr

log = structlog.get_logger(__name__)

KEY_FILE_NAME = "api_keys.json"
KEY_PREFIX = "rpn_"
_KEY_FILE_VERSION = 1


class Scope(StrEnum):
    """What a key may do: ``engine`` (events, recommend, rewards), ``sales`` (insight, card), ``admin``."""

    ENGINE = "engine"
    SALES = "sales"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its public id (safe to log), its scopes and the salted hash of the secret token."""

    key_id: str
    scopes: frozenset[Scope]
    digest: str
    created_at: datetime | None = None
    label: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the id of the key that authenticated the request and what it may do."""

    key_id: str
    scopes: frozenset[Scope]


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from strings; raises ``ValueError`` naming the unknown scope and the known ones."""
    scopes: set[Scope] = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"scope must be one of {known}, but got {value!r}") from None
    if not scopes:
        raise ValueError("scope: at least one scope is required")
    return frozenset(scopes)


def hash_key(token: str, salt: bytes) -> str:
    """Salted SHA-256 of a token, hex; what the key file stores instead of the token."""
    return hashlib.sha256(salt + token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random API key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The keys a server accepts; ``authenticate`` maps a presented token to a ``Principal`` or None.

    Every stored digest is compared with ``hmac.compare_digest`` (no early exit on the first match), so timing
    reveals neither which key matched nor how much of a digest did.
    """

    def __init__(self, salt: bytes, keys: Iterable[ApiKey] = ()) -> None:
        if len(salt) < 16:
            raise ValueError(f"salt must be at least 16 bytes, but got {len(salt)}")
        self.salt = salt
        self.keys: list[ApiKey] = list(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def add_tokens(self, tokens_by_scope: Mapping[str, SecretStr]) -> None:
        """Accept keys given in settings (scope -> comma-separated tokens), kept only as hashes."""
        for scope_name, secret in tokens_by_scope.items():
            scopes = parse_scopes([scope_name])
            for n, token in enumerate(t.strip() for t in secret.get_secret_value().split(",")):
                if token:
                    self.keys.append(ApiKey(f"settings-{scope_name}-{n}", scopes, hash_key(token, self.salt)))

    def authenticate(self, token: str) -> Principal | None:
        """The principal whose key is ``token``, or None; constant time in the token's content."""
        digest = hash_key(token, self.salt).encode()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest.encode()) and found is None:
                found = key
        return None if found is None else Principal(found.key_id, found.scopes)


class KeyFile:
    """The JSON file under ``data_dir`` holding the deployment's salt and the hashes of its keys."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, data_dir: Path) -> KeyFile:
        return cls(data_dir / KEY_FILE_NAME)

    def load(self) -> KeyRing:
        """The stored keys; an empty ring with a fresh salt when the file does not exist yet."""
        if not self.path.exists():
            return KeyRing(secrets.token_bytes(32))
        try:
            document = json.loads(self.path.read_text())
            salt = bytes.fromhex(document["salt"])
            keys = [
                ApiKey(
                    key_id=str(item["key_id"]),
                    scopes=parse_scopes(item["scopes"]),
                    digest=str(item["digest"]),
                    created_at=datetime.fromisoformat(item["created_at"]) if item.get("created_at") else None,
                    label=item.get("label"),
                )
                for item in document["keys"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"key file {self.path} is malformed: {exc}") from exc
        return KeyRing(salt, keys)

    def create(self, scopes: Iterable[str], label: str | None = None) -> tuple[ApiKey, str]:
        """Generate a key with ``scopes`` and store its hash; returns the record and the token."""
        parsed = parse_scopes(scopes)
        ring = self.load()
        token = new_token()
        key = ApiKey(
            key_id="k_" + secrets.token_hex(6),
            scopes=parsed,
            digest=hash_key(token, ring.salt),
            created_at=datetime.now(UTC),
            label=label,
        )
        ring.keys.append(key)
        self._save(ring)
        return key, token

    def revoke(self, key_id: str) -> bool:
        """Remove a key by id; False if no such key."""
        ring = self.load()
        kept = [k for k in ring.keys if k.key_id != key_id]
        if len(kept) == len(ring.keys):
            return False
        ring.keys = kept
        self._save(ring)
        return True

    def _save(self, ring: KeyRing) -> None:
        """Write atomically (temp file + rename) with owner-only permissions."""
        document = {
            "version": _KEY_FILE_VERSION,
            "salt": ring.salt.hex(),
            "keys": [
                {
                    "key_id": k.key_id,
                    "scopes": sorted(s.value for s in k.scopes),
                    "digest": k.digest,
                    "created_at": k.created_at.isoformat() if k.created_at else None,
                    "label": k.label,
                }
                for k in ring.keys
                if not k.key_id.startswith("settings-")
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def load_key_ring(data_dir: Path, settings_keys: Mapping[str, SecretStr]) -> KeyRing:
    """Every key a server accepts: the key file's plus those given in settings."""
    ring = KeyFile.in_dir(data_dir).load()
    ring.add_tokens(settings_keys)
    return ring


class LiveKeyRing:
    """The accepted keys, re-read when the key file changes, so ``ripen keys create|revoke`` takes effect
    on a running server within ``check_interval`` seconds, without a restart.

    A key file that cannot be read keeps the last good ring (a half-written file must not lock everyone out).
    """

    def __init__(
        self, data_dir: Path, settings_keys: Mapping[str, SecretStr], check_interval: float = 1.0
    ) -> None:
        self.key_file = KeyFile.in_dir(data_dir)
        self.settings_keys = dict(settings_keys)
        self.check_interval = check_interval
        self._stamp = self._file_stamp()
        self._ring = load_key_ring(data_dir, self.settings_keys)
        self._checked_at = time.monotonic()

    def current(self) -> KeyRing:
        """The ring to authenticate against, reloaded first if the file changed since the last check."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            self._checked_at = now
            stamp = self._file_stamp()
            if stamp != self._stamp:
                try:
                    ring = load_key_ring(self.key_file.path.parent, self.settings_keys)
                except ValueError:
                    log.warning("key_file_unreadable", path=str(self.key_file.path))
                else:
                    self._ring, self._stamp = ring, stamp
                    log.info("keys_reloaded", keys=len(ring))
        return self._ring

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.key_file.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size
