"""Shapes every router shares."""

from typing import Annotated

from fastapi import Path, Query

from yunguan.core.errors import PROBLEM_MEDIA_TYPE

ResourceId = Annotated[str, Path(min_length=1, max_length=64)]
Filter = Annotated[str | None, Query(max_length=255)]


def problem_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI entries for the problem+json answers a route may give."""
    schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "required": ["type", "title", "status", "code"],
    }
    return {
        s: {"description": "problem", "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}
        for s in statuses
    }
