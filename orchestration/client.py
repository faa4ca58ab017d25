"""Connecting to Temporal the way every Temporal tool does (temporalio.envconfig), plus cluster set-up."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfig
from temporalio.service import RetryConfig

from core.config import Settings
from orchestration.codec import EncryptionCodec, load_key_ring
from orchestration.contracts import SEARCH_ATTRIBUTES
from orchestration.payloads import PayloadConverter


def payload_codec(settings: Settings, allow_plaintext: bool = False) -> EncryptionCodec:
    """The AES-GCM codec with this installation's key ring (see orchestration/codec.py)."""
    ring, reload = load_key_ring(settings.home)
    return EncryptionCodec(ring, reload, allow_plaintext=allow_plaintext)


def data_converter(settings: Settings) -> DataConverter:
    """What every client and worker of TrainEasy must use: payloads encrypted, and failure messages and
    stack traces (which can name columns and files) moved into an encrypted attribute as well; dataclasses
    decoded with their field types resolved once (orchestration/payloads.py)."""
    return dataclasses.replace(
        DataConverter.default,
        payload_converter_class=PayloadConverter,
        payload_codec=payload_codec(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


# The app's calls give up on an unreachable server after ~2.5 s instead of the client's default 10 s: a page
# then says "Temporal is not reachable" at once, and the engine watch takes over (orchestration/engine_watch.py).
APP_RETRIES = RetryConfig(initial_interval_millis=100, max_interval_millis=1000, max_elapsed_time_millis=2500, max_retries=6)


async def connect(
    settings: Settings, converter: DataConverter | None = None, lazy: bool = False, retries: RetryConfig | None = None
) -> Client:
    """TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TLS / profiles win; else the embedded dev server. The
    encrypting converter unless `converter` says otherwise (the health check sends no payloads).

    `lazy`: return at once and connect on the first call (the app, which must start and serve while
    Temporal is down); a call while it cannot connect fails at once, and a later one connects again.
    Workers connect eagerly: they have nothing to do without the server. `retries`: the client's retry policy
    for RPCs that fail to reach the server (default: the SDK's, up to 10 s)."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", settings.temporal_target)
    config.setdefault("namespace", settings.namespace)
    return await Client.connect(**config, data_converter=converter or data_converter(settings), lazy=lazy, retry_config=retries)


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the custom search attributes the app filters on; returns the ones it added."""
    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    missing = [key.name for key in SEARCH_ATTRIBUTES if key.name not in existing.custom_attributes]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
            )
        )
    return missing


async def history_retention(client: Client) -> timedelta:
    desc = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    return desc.config.workflow_execution_retention_ttl.ToTimedelta()


async def ensure_history_retention(client: Client, days: int) -> bool:
    """Keep closed workflows' histories `days` days (the dev server's default is 1); True if it changed it.
    Only the retention is sent: the server leaves the namespace's other settings as they are."""
    wanted = timedelta(days=days)
    if await history_retention(client) == wanted:
        return False
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=int(wanted.total_seconds()))),
        )
    )
    return True
