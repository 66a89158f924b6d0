"""EventBridge scheduled events (an EventBridge rule's schedule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidEvent
from shared.events.kinds import describe_errors, require_kind


class ScheduledEvent(BaseModel):
    """An EventBridge rule's scheduled event. `resources` holds the rule's ARN."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    version: str
    id: str = Field(min_length=1)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"]
    account: str
    time: AwareDatetime
    region: str
    resources: tuple[str, ...] = Field(min_length=1)
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def rule_name(self) -> str | None:
        """The name of the rule in `resources[0]` (`arn:aws:events:<region>:<account>:rule/<name>`), if it is one."""
        _, _, path = self.resources[0].partition(":rule/")
        return path.rsplit("/", 1)[-1] or None  # rule/<bus>/<name> on a custom bus


def parse_schedule(event: Mapping[str, Any]) -> ScheduledEvent:
    """The scheduled event; InvalidEvent for another kind, or one without an id, an aware time or a rule."""
    require_kind(event, "schedule")
    try:
        return ScheduledEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(f"Malformed scheduled event: {describe_errors(exc)}") from None
