"""How an endpoint's body is published: one ``oneOf`` variant per way events arrive (webhooks,
with or without a signed timestamp; an SQS or AMQP queue; Miro polling), each with the providers,
credential and ``source_config`` that way takes, rendered from the registry and the source
config serializers ``endpoint_source_check`` validates with."""

import copy

from drf_spectacular.extensions import OpenApiSerializerExtension

from integrations.api.schema import register_component
from integrations.api.schema import stem as stem_of
from integrations.providers.jsonschema import json_schema, openapi_schema
from integrations.registry import providers
from webhooks.models import EndpointSource
from webhooks.sources.config import AMQP_PORTS, SCHEMAS

__all__ = ("AMQP_URL", "EndpointCreateExtension")

# What AmqpConfig.validate_url accepts, narrowed as integrations.providers.jsonschema narrows
# an http URL: a scheme it knows, a host name under a TLD, a port, a vhost; no user:password.
_LABEL = r"[a-z0-9]{1,20}(?:-[a-z0-9]{1,20}){0,2}"
AMQP_URL = (
    rf"^(?:{'|'.join(sorted(AMQP_PORTS))})://{_LABEL}(?:\.{_LABEL}){{0,2}}\.[a-z]{{2,24}}"
    r"(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~-]{1,40})?$"
)
# webhooks.services.sources._provider_check: who each source kind reads events of.
SQS_PROVIDERS = ("shopify",)
MIRO_POLL_PROVIDERS = ("miro",)
SOURCE_CREDENTIAL_HELP = {
    EndpointSource.SQS: "An amazon_sqs api credential of the customer.",
    EndpointSource.AMQP: "An amqp api credential of the customer.",
}


def _source_config(source: str) -> dict:
    config = openapi_schema(json_schema(SCHEMAS[source]))
    if source == EndpointSource.AMQP:
        config["properties"]["url"]["pattern"] = AMQP_URL
    return config


class EndpointCreateExtension(OpenApiSerializerExtension):
    """A webhook endpoint names a provider that sends webhooks and its ``webhook_signing``
    credential (a timestamp tolerance only where the provider signs one); a source endpoint
    names its source, its settings and (for a queue) its broker credential."""

    target_class = "webhooks.api.serializers.EndpointCreateSerializer"

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return base
        properties = base["properties"]
        common = {name: properties[name] for name in ("customer", "active")}
        receiving = [p for p in providers() if p.verifies_webhooks]
        timestamped = [p.key for p in receiving if p.webhook_tolerance_seconds is not None]
        plain = [p.key for p in receiving if p.webhook_tolerance_seconds is None]
        webhook = {"credential": properties["credential"]}
        variants = {
            "WebhookEndpointRequest": (EndpointSource.WEBHOOK, plain, webhook),
            "TimestampedWebhookEndpointRequest": (
                EndpointSource.WEBHOOK,
                timestamped,
                {**webhook, "tolerance_seconds": properties["tolerance_seconds"]},
            ),
            "SqsEndpointRequest": (EndpointSource.SQS, list(SQS_PROVIDERS), {}),
            "AmqpEndpointRequest": (EndpointSource.AMQP, [p.key for p in receiving], {}),
            "MiroPollEndpointRequest": (EndpointSource.MIRO_POLL, list(MIRO_POLL_PROVIDERS), {}),
        }
        refs = []
        for name, (source, keys, own) in variants.items():
            if not keys:
                continue
            stem = name.removesuffix("Request")
            source_enum = {"type": "string", "enum": [source]}
            source_name = f"{stem_of(source)}EndpointSource"
            variant_properties = {
                **common,
                # Enum components: the enum hook would otherwise rename each variant's enums.
                "provider": register_component(
                    auto_schema, f"{stem}Provider", {"type": "string", "enum": keys}
                ),
                "source": register_component(auto_schema, source_name, source_enum),
                **copy.deepcopy(own),
            }
            required = ["customer", "provider"]
            if source == EndpointSource.WEBHOOK:
                required.append("credential")
            else:
                variant_properties["source_config"] = _source_config(source)
                required += ["source", "source_config"]
            if source in SOURCE_CREDENTIAL_HELP:
                variant_properties["source_credential"] = {
                    "type": "integer",
                    "minimum": 1,
                    "description": SOURCE_CREDENTIAL_HELP[source],
                }
                required.append("source_credential")
            variant = {
                "type": "object",
                "description": f"Events by {source}.",
                "properties": variant_properties,
                "required": required,
                "additionalProperties": False,
            }
            refs.append(register_component(auto_schema, name, variant))
        return {"oneOf": refs, "description": "An endpoint: where one provider's events arrive."}
