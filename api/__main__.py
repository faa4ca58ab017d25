"""`python -m api`: serve the REST API with uvicorn on TRAINEASY_API_PORT (the launcher starts it)."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from api.app import create_app
from core.config import load_settings
from core.storage import private_umask


def main() -> None:
    private_umask()  # staged uploads and everything else this process writes: owner only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = load_settings()
    uvicorn.run(
        create_app(s),
        host=s.app_address,
        port=s.api_port,
        ssl_certfile=s.tls_cert or None,
        ssl_keyfile=s.tls_key or None,
        # X-Forwarded-For only from configured reverse proxies (the throttling and the audit log see the address)
        forwarded_allow_ips=s.trusted_proxies or "",
        proxy_headers=bool(s.trusted_proxies),
        log_level="info",
        access_log=False,  # every call is in the audit log; tokens never reach a log line
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # sdk-python #300: avoid a crash in interpreter teardown after using Temporal


if __name__ == "__main__":
    main()
