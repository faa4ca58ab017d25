"""AES-GCM payload codec: every payload TrainEasy puts in Temporal is encrypted with a rotating key ring.

Keys come from `TRAINEASY_PAYLOAD_KEYS` (`id:base64key,id:base64key`, the first one encrypts, the others
still decrypt) or else from `<home>/secrets/payload-keys.json` (mode 0600, generated on first use).
Decoding refuses plaintext: a worker must never run work that a client without the key sent it.
Rotate the file with `python -m orchestration.codec rotate`; print a key for the env var with `new-key`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENV_VAR = "TRAINEASY_PAYLOAD_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # AES-GCM's standard nonce; random per payload
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The one payload the Temporal server writes itself, without any key: the details of an activity cancelled
# before a worker started it (a run queued behind others when its batch is cancelled). Refusing it fails
# that workflow's task forever and leaves the run "running"; it decodes to this constant text, nothing else.
SERVER_PAYLOADS = frozenset({(b"json/plain", b'"ACTIVITY_ID_NOT_STARTED"')})


class PayloadKeyError(Exception):
    """The key configuration is missing or malformed; the message says how to fix it."""


class PayloadDecodeError(ValueError):
    """A payload that cannot or must not be decoded (plaintext, unknown key id, tampered)."""


@dataclass(frozen=True)
class KeyRing:
    current: str  # the id new payloads are encrypted with
    keys: Mapping[str, bytes] = field(repr=False)  # id -> key; older ids only decrypt

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not KEY_ID_RE.fullmatch(key_id):
                raise PayloadKeyError(f"Payload key id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-'.")
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(f"Payload key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}.")
        if self.current not in self.keys:
            raise PayloadKeyError(f"The current payload key id {self.current!r} has no key.")

    @staticmethod
    def generate(older: KeyRing | None = None) -> KeyRing:
        """A ring with a fresh current key, keeping every key of `older` for decryption."""
        key_id = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
        return KeyRing(key_id, {key_id: os.urandom(KEY_BYTES), **(older.keys if older else {})})

    def to_json(self) -> str:
        return json.dumps(
            {"current": self.current, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}}, indent=2
        )

    @staticmethod
    def from_json(text: str, where: str) -> KeyRing:
        try:
            data = json.loads(text)
            return KeyRing(data["current"], {k: _b64(v, k) for k, v in data["keys"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PayloadKeyError(f"{where} is not a valid payload key file ({type(exc).__name__}: {exc}).") from None

    @staticmethod
    def from_env(text: str) -> KeyRing:
        """`id:base64key[,id:base64key…]`, current key first."""
        pairs = [item.strip().split(":", 1) for item in text.split(",") if item.strip()]
        if not pairs or any(len(p) != 2 for p in pairs):
            raise PayloadKeyError(f"{ENV_VAR} must look like 'id1:base64key,id0:base64key' (current key first).")
        keys = {key_id.strip(): _b64(value.strip(), key_id.strip()) for key_id, value in pairs}
        if len(keys) != len(pairs):
            raise PayloadKeyError(f"{ENV_VAR} names a key id twice.")
        return KeyRing(pairs[0][0].strip(), keys)


def _b64(value: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise PayloadKeyError(f"Payload key {key_id!r} is not valid base64.") from None


def key_file(home: Path) -> Path:
    return home / "secrets" / "payload-keys.json"


def _read_key_file(path: Path) -> KeyRing:
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PayloadKeyError(f"{path} is readable by other accounts; run: chmod 600 {path}")
        return KeyRing.from_json(fh.read(), str(path))


def ensure_key_file(path: Path) -> KeyRing:
    """The ring in `path`, creating it if missing. Safe when several processes start at once: the new
    file is written in full under a private name, then linked into place (link fails if it exists, as
    O_EXCL does), so nobody ever reads half a file and the first writer's key wins for everyone."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow the mode; make it exact
        with os.fdopen(fd, "w") as fh:
            fh.write(KeyRing.generate().to_json())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def rotate_key_file(path: Path) -> KeyRing:
    """A new current key in the file; the old ones stay for decryption. Processes that only have the
    file (not the env var) pick the new key up when they first meet a payload encrypted with it."""
    ring = KeyRing.generate(ensure_key_file(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(ring.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return ring


def load_key_ring(home: Path, environ: Mapping[str, str] = os.environ) -> tuple[KeyRing, Callable[[], KeyRing] | None]:
    """(ring, reload): the env var if set (fixed for the process), else the key file (re-readable)."""
    text = environ.get(ENV_VAR, "").strip()
    if text:
        return KeyRing.from_env(text), None
    path = key_file(home)
    return ensure_key_file(path), lambda: _read_key_file(path)


class EncryptionCodec(PayloadCodec):
    """Each payload is serialized whole (metadata included) and sealed with AES-GCM under the current key.

    The key id rides in the metadata (and is bound to the ciphertext as associated data) so that older
    payloads still decrypt after a rotation. `allow_plaintext` is for display tools only (the codec
    endpoint): a worker or client must keep the default and refuse unencrypted payloads.
    """

    def __init__(self, ring: KeyRing, reload: Callable[[], KeyRing] | None = None, allow_plaintext: bool = False) -> None:
        super().__init__()
        self._ring = ring
        self._reload = reload
        self._allow_plaintext = allow_plaintext
        self._ciphers: dict[tuple[str, bytes], AESGCM] = {}
        self._lock = threading.Lock()

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    def _cipher(self, key_id: str) -> AESGCM | None:
        key = self._ring.keys.get(key_id)
        if key is None and self._reload is not None:
            with self._lock:  # a key rotated in by another process since we loaded the file
                try:
                    self._ring = self._reload()
                except (OSError, PayloadKeyError):
                    pass
            key = self._ring.keys.get(key_id)
        if key is None:
            return None
        cipher = self._ciphers.get((key_id, key))
        if cipher is None:
            cipher = self._ciphers[(key_id, key)] = AESGCM(key)
        return cipher

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._ring.current
        cipher = self._cipher(key_id)
        assert cipher is not None
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, p.SerializeToString(), key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID_META: key_id.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                if self._allow_plaintext or (p.metadata.get("encoding"), p.data) in SERVER_PAYLOADS:
                    out.append(p)
                    continue
                encoding = p.metadata.get("encoding", b"").decode(errors="replace") or "none"
                raise PayloadDecodeError(
                    f"Refusing an unencrypted payload (encoding {encoding!r}): it was sent by a client without "
                    f"TrainEasy's payload key ({ENV_VAR} or <home>/secrets/payload-keys.json)."
                )
            key_id = p.metadata.get(KEY_ID_META, b"").decode(errors="replace")
            cipher = self._cipher(key_id)
            if cipher is None:
                raise PayloadDecodeError(
                    f"Payload encrypted with unknown key id {key_id!r}; this process knows "
                    f"{sorted(self._ring.keys)}. Give it that key ({ENV_VAR})."
                )
            try:
                plain = cipher.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], key_id.encode())
            except InvalidTag:
                raise PayloadDecodeError(
                    f"Payload with key id {key_id!r} failed authentication: "
                    "it was altered, or encrypted with a different key under that id."
                ) from None
            out.append(Payload.FromString(plain))
        return out


def new_key_text() -> str:
    """One `id:base64key` entry for TRAINEASY_PAYLOAD_KEYS."""
    ring = KeyRing.generate()
    return f"{ring.current}:{base64.b64encode(ring.keys[ring.current]).decode()}"


def main(argv: list[str]) -> int:
    from core.config import load_settings

    if argv == ["new-key"]:
        print(new_key_text())
        return 0
    if argv == ["rotate"]:
        if os.environ.get(ENV_VAR, "").strip():
            print(
                f"{ENV_VAR} is set, so the key file is not used: put a new key first in that variable "
                f"(get one with `python -m orchestration.codec new-key`) and restart.",
                file=sys.stderr,
            )
            return 2
        path = key_file(load_settings().home)
        ring = rotate_key_file(path)
        print(f"{path}: current key is now {ring.current}; {len(ring.keys) - 1} older key(s) kept for decryption.")
        return 0
    print("usage: python -m orchestration.codec new-key | rotate", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
