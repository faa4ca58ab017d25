"""The launcher behind `make run`: restart reuses state, an external Temporal, clear start-up errors."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from core.config import PROJECT_ROOT
from orchestration.codec import ENV_VAR, key_file
from tests.e2e.conftest import Stack, free_port
from tests.helpers import BIN, stop_processes


def test_a_second_start_reuses_accounts_and_temporal_state(tmp_path):
    no_env_key = {ENV_VAR: ""}  # this stack keeps its payload key in its own file
    first = Stack(tmp_path / "home", extra_env=no_env_key)
    first.wait_ready()
    passwords = first.passwords()
    try:
        # the Temporal UI listens on loopback, decrypts through the app's codec routes, and the
        # namespace keeps histories for TRAINEASY_HISTORY_DAYS (30 by default; the dev server keeps 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{first.ui_port}/api/v1/settings", timeout=10) as resp:
            ui = json.load(resp)
        assert ui["Codec"]["Endpoint"] == f"http://localhost:{first.app_port}/codec"
        described = subprocess.run(
            [
                str(BIN / "temporal"),
                "operator",
                "namespace",
                "describe",
                "--namespace",
                "default",
                "--address",
                f"127.0.0.1:{first.temporal_port}",
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(described.stdout)["config"]["workflowExecutionRetentionTtl"] == f"{30 * 86400}s"
    finally:
        assert first.stop() == 0 and "Stopped." in first.text()
    assert set(passwords) == {"admin", "alice", "bob"}
    assert "Demo accounts (shown once" in first.text()
    assert (tmp_path / "home" / "temporal" / "temporal.db").is_file()
    assert oct((tmp_path / "home" / "demo-accounts.txt").stat().st_mode & 0o777) == "0o600"
    keys = key_file(tmp_path / "home")
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    key_text = keys.read_text()

    second = Stack(tmp_path / "home", extra_env=no_env_key)
    second.wait_ready()
    try:
        assert "Demo accounts (shown once" not in second.text()
        assert "demo passwords are in" in second.text()
        assert second.passwords() == passwords
        assert keys.read_text() == key_text, "the same payload key: the stored histories stay readable"
    finally:
        assert second.stop() == 0
    # every child is gone: nothing listens on the ports any more (SO_REUSEADDR: ignore TIME_WAIT leftovers
    # of closed connections, exactly as the launcher's own port check does)
    for port in (second.app_port, second.temporal_port):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


def test_with_temporal_address_no_server_is_started(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(BIN / "temporal"),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack = Stack(tmp_path / "home", extra_env={"TEMPORAL_ADDRESS": address})
    try:
        stack.wait_ready()
        text = stack.text()
        assert f"connecting to the Temporal server at {address}" in text
        assert "starting Temporal dev server" not in text and "Temporal UI" not in text
        assert not (tmp_path / "home" / "temporal").exists()
        assert "history retention of namespace 'default' set to 30 days" in text  # that server allowed it
        # the launcher registered the search attributes the app filters on, on that server
        listed = subprocess.run(
            [str(BIN / "temporal"), "operator", "search-attribute", "list", "--address", address],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert all(name in listed for name in ("Owner", "RunKind", "Model", "DatasetId"))
    finally:
        rc = stack.stop()
        stop_processes(server)
    assert rc == 0


def test_a_busy_port_gives_one_clear_line(tmp_path):
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", port))
        busy.listen()
        env = {**os.environ, "TRAINEASY_HOME": str(tmp_path), "TRAINEASY_APP_PORT": str(port)}
        env.pop("TEMPORAL_ADDRESS", None)
        proc = subprocess.run(
            [sys.executable, "launcher.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 2
    assert f"Port {port} is already in use" in proc.stderr and "TRAINEASY_APP_PORT=<port>" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def _self_signed(folder) -> tuple[str, str]:
    """A throwaway certificate for localhost (the `cryptography` package TrainEasy already uses)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_tls_settings_serve_https_only_and_beyond_loopback_without_tls_warns(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    stack = Stack(tmp_path / "home", extra_env={"TRAINEASY_TLS_CERT": cert, "TRAINEASY_TLS_KEY": key})
    try:
        stack.wait_ready()
        assert f"App:          https://localhost:{stack.app_port}" in stack.text()
        context = ssl.create_default_context(cafile=cert)
        with urllib.request.urlopen(f"https://localhost:{stack.app_port}/auth/login", context=context, timeout=10) as r:
            assert r.status == 200
            assert "; secure" in r.headers["set-cookie"].lower()  # the form's cookie is HTTPS-only
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{stack.app_port}/_stcore/health", timeout=5)
            raise AssertionError("plain HTTP was answered")
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
            pass
    finally:
        assert stack.stop() == 0
    assert "without TLS" not in stack.text()


def test_serving_beyond_loopback_without_tls_warns():
    from dataclasses import replace

    from core.config import load_settings
    from launcher import exposure_warning

    settings = load_settings()
    assert exposure_warning(replace(settings, app_address="127.0.0.1")) is None
    assert "without TLS" in (exposure_warning(replace(settings, app_address="0.0.0.0")) or "")
    assert exposure_warning(replace(settings, app_address="0.0.0.0", tls_cert="c.pem", tls_key="k.pem")) is None
