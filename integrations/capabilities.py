"""Provider-neutral capabilities: what internal apps ask for, whoever serves it.

A capability defines its input; each provider that serves it declares a ``CapabilityBinding``
that maps the input onto one of its operations (``integrations.providers.base``)."""

from collections.abc import Mapping
from dataclasses import dataclass

from rest_framework import serializers

from integrations.constants import CAPABILITY_WORKFLOW_PROCEED

__all__ = ("CAPABILITIES", "Capability", "WorkflowProceedInput", "stage_name", "stages_of")


class WorkflowProceedInput(serializers.Serializer):
    """``{"item", "from", "to", "options"}``; stages are names the caller's workflow uses."""

    item = serializers.CharField(max_length=200, help_text="Trello card id or Miro item id.")
    to = serializers.CharField(max_length=200, help_text="Name of the stage to move the item to.")
    options = serializers.DictField(
        required=False,
        default=dict,
        help_text="Provider hints: Trello 'pos' (top|bottom|number), Miro 'position' {x, y}.",
    )

    def get_fields(self):
        # "from" is a Python keyword, so it cannot be declared as a class attribute.
        fields = super().get_fields()
        fields["from"] = serializers.CharField(
            max_length=200, required=False, help_text="Name of the stage the item is expected in."
        )
        return fields


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    input_serializer: type[serializers.Serializer]
    # Stage names in these input fields must exist in the integration's config["stages"].
    stage_fields: tuple[str, ...] = ()


CAPABILITIES: dict[str, Capability] = {
    CAPABILITY_WORKFLOW_PROCEED: Capability(
        name=CAPABILITY_WORKFLOW_PROCEED,
        description="Move a workflow item to another stage (Trello card to a list, Miro item "
        "into a frame), according to the customer's integration.",
        input_serializer=WorkflowProceedInput,
        stage_fields=("from", "to"),
    ),
}


def stages_of(config: Mapping) -> dict[str, str]:
    return dict(config.get("stages") or {})


def stage_name(config: Mapping, provider_id: str | None) -> str | None:
    """The caller's name for a provider id, so results speak stage names, not provider ids."""
    for name, stage_id in stages_of(config).items():
        if stage_id == provider_id:
            return name
    return None
