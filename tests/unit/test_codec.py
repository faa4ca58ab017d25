"""The AES-GCM payload codec: round trip, key rotation, and every refusal (plaintext, unknown key, tampering)."""

from __future__ import annotations

import base64
import multiprocessing
import os
import stat

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from orchestration.codec import (
    ENCODING,
    ENV_VAR,
    KEY_ID_META,
    EncryptionCodec,
    KeyRing,
    PayloadDecodeError,
    PayloadKeyError,
    ensure_key_file,
    key_file,
    load_key_ring,
    rotate_key_file,
)

SECRET = {"column": "zebra_income_col", "file": "secret-plans.csv"}


async def _payloads(value=SECRET) -> list[Payload]:
    return DataConverter.default.payload_converter.to_payloads([value])


async def test_round_trip_encrypts_and_restores_the_payload():
    codec = EncryptionCodec(KeyRing.generate())
    plain = await _payloads()
    sealed = await codec.encode(plain)
    assert sealed[0].metadata["encoding"] == ENCODING
    assert sealed[0].metadata[KEY_ID_META] == codec.current_key_id.encode()
    assert b"zebra_income_col" not in sealed[0].SerializeToString()
    assert await codec.decode(sealed) == plain
    # a fresh nonce each time: the same value never gives the same ciphertext
    assert (await codec.encode(plain))[0].data != sealed[0].data


async def test_old_key_still_decodes_after_rotation():
    old = KeyRing.generate()
    sealed = await EncryptionCodec(old).encode(await _payloads())
    rotated = EncryptionCodec(KeyRing.generate(older=old))
    assert rotated.current_key_id != old.current
    assert await rotated.decode(sealed) == await _payloads()
    assert (await rotated.encode(await _payloads()))[0].metadata[KEY_ID_META] == rotated.current_key_id.encode()


async def test_unknown_key_id_is_refused():
    sealed = await EncryptionCodec(KeyRing.generate()).encode(await _payloads())
    with pytest.raises(PayloadDecodeError, match="unknown key id"):
        await EncryptionCodec(KeyRing.generate()).decode(sealed)


async def test_same_key_id_with_another_key_is_refused():
    ring = KeyRing.generate()
    sealed = await EncryptionCodec(ring).encode(await _payloads())
    impostor = KeyRing(ring.current, {ring.current: os.urandom(32)})
    with pytest.raises(PayloadDecodeError, match="failed authentication"):
        await EncryptionCodec(impostor).decode(sealed)


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "key id"])
async def test_tampered_payload_is_refused(where):
    ring = KeyRing.generate(older=KeyRing.generate())
    codec = EncryptionCodec(ring)
    sealed = (await codec.encode(await _payloads()))[0]
    data = bytearray(sealed.data)
    if where == "key id":  # relabelled to the other (known) key: the key id is bound to the ciphertext
        other = next(k for k in ring.keys if k != ring.current)
        sealed.metadata[KEY_ID_META] = other.encode()
    else:
        data[{"nonce": 0, "ciphertext": 14, "tag": -1}[where]] ^= 0x01
        sealed.data = bytes(data)
    with pytest.raises(PayloadDecodeError, match="failed authentication"):
        await codec.decode([sealed])


async def test_unencrypted_payload_is_refused():
    codec = EncryptionCodec(KeyRing.generate())
    with pytest.raises(PayloadDecodeError, match="unencrypted"):
        await codec.decode(await _payloads())
    with pytest.raises(PayloadDecodeError, match="unencrypted"):
        await codec.decode([Payload(metadata={"encoding": b"binary/null"})])
    # only a display tool may pass plaintext through
    assert await EncryptionCodec(KeyRing.generate(), allow_plaintext=True).decode(await _payloads()) == await _payloads()


def test_key_file_is_created_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    old_umask = os.umask(0o022)  # a lax umask must not make the key readable
    try:
        ring, reload = load_key_ring(tmp_path)
    finally:
        os.umask(old_umask)
    path = key_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert load_key_ring(tmp_path)[0] == ring, "a second start reads the same key"
    assert reload is not None and reload() == ring
    assert list(path.parent.iterdir()) == [path], "no temporary file left behind"


def _load_in_child(home, go, queue):
    go.wait(10)
    queue.put(ensure_key_file(key_file(home)).current)


def test_processes_starting_together_agree_on_one_key(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    ctx = multiprocessing.get_context("fork")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_load_in_child, args=(tmp_path, go, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    go.set()  # all at once: none of them finds the file
    for p in procs:
        p.join(30)
    assert len({queue.get(timeout=5) for _ in procs}) == 1


def test_a_key_file_readable_by_others_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    ensure_key_file(key_file(tmp_path))
    key_file(tmp_path).chmod(0o644)
    with pytest.raises(PayloadKeyError, match="chmod 600"):
        load_key_ring(tmp_path)


async def test_rotated_key_file_is_picked_up_by_a_running_process(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    running = EncryptionCodec(*load_key_ring(tmp_path))  # started before the rotation
    old_id = running.current_key_id
    rotated = rotate_key_file(key_file(tmp_path))
    assert rotated.current != old_id and old_id in rotated.keys
    assert stat.S_IMODE(key_file(tmp_path).stat().st_mode) == 0o600
    newer = EncryptionCodec(*load_key_ring(tmp_path))
    sealed = await newer.encode(await _payloads())
    assert await running.decode(sealed) == await _payloads()


def test_env_var_wins_and_lists_the_current_key_first(tmp_path):
    k1, k0 = os.urandom(32), os.urandom(32)
    text = f"new:{base64.b64encode(k1).decode()}, old:{base64.urlsafe_b64encode(k0).decode()}"
    ring, reload = load_key_ring(tmp_path, {ENV_VAR: text})
    assert ring.current == "new" and ring.keys == {"new": k1, "old": k0}
    assert reload is None and not key_file(tmp_path).exists()


@pytest.mark.parametrize(
    "text",
    [
        "nocolon",
        "a:notbase64!!",
        f"a:{base64.b64encode(b'short').decode()}",
        f"bad id:{base64.b64encode(os.urandom(32)).decode()}",
    ],
)
def test_malformed_env_var_is_a_clear_error(tmp_path, text):
    with pytest.raises(PayloadKeyError):
        load_key_ring(tmp_path, {ENV_VAR: text})


def test_keys_never_show_in_repr():
    ring = KeyRing.generate()
    assert base64.b64encode(ring.keys[ring.current]).decode() not in repr(ring)
    assert repr(ring.keys[ring.current]) not in repr(ring)
