"""The content catalog: list, read, create or update (validated), deactivate. Admin scope."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from features.schemas import ContentBlock
from serving.deps import AdminKey, EventStoreDep
from serving.errors import error_responses
from serving.schemas import ContentBlockBody, ContentBlockOut, ContentList

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/content", tags=["catalog"], responses=error_responses(401, 403, 413, 422, 503))

ContentId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_:@\-][A-Za-z0-9_.:@\-]*$",
        description="The block's id; not starting with a dot (`.` and `..` are not addressable in URLs).",
        examples=["wp-cloud-migration"],
    ),
]


class ListQuery(BaseModel):
    """Query of ``GET /v1/content``; unknown parameters are refused (a typo must not silently list all)."""

    model_config = ConfigDict(extra="forbid")

    include_inactive: bool = Field(default=False, description="Also list deactivated blocks.")


@router.get("", response_model=ContentList, summary="List content blocks")
def list_content(store: EventStoreDep, _key: AdminKey, query: Annotated[ListQuery, Query()]) -> ContentList:
    """Catalog blocks ordered by ``content_id``; active ones only unless ``include_inactive``."""
    blocks = store.list_content(active_only=not query.include_inactive)
    return ContentList(
        count=len(blocks), items=[ContentBlockOut.model_validate(b.model_dump()) for b in blocks]
    )


@router.get(
    "/{content_id}",
    response_model=ContentBlockOut,
    responses=error_responses(404),
    summary="Read a content block",
)
def get_content(content_id: ContentId, store: EventStoreDep, _key: AdminKey) -> ContentBlock:
    """One block, active or not; 404 if the catalog has no block with this id."""
    block = store.get_content(content_id)
    if block is None:
        raise HTTPException(404, f"content_id: no content block {content_id!r}")
    return block


@router.put(
    "/{content_id}",
    response_model=ContentBlockOut,
    responses={
        201: {"model": ContentBlockOut, "description": "Created."},
        200: {"description": "Updated."},
        **error_responses(409),
    },
    summary="Create or update a content block",
)
def put_content(
    content_id: ContentId, block: ContentBlockBody, store: EventStoreDep, response: Response, _key: AdminKey
) -> ContentBlock:
    """Store the block under ``content_id`` (201 when new, 200 when replaced).

    Validated beyond its shape: the body's ``content_id`` must match the path (else 422), and
    ``prerequisite_id`` and ``alternative_id`` must name blocks already in the catalog (else 409: a reminder
    loop pointing nowhere would send nothing).
    """
    if block.content_id != content_id:
        _invalid(
            "content_id", f"must match the path's content_id {content_id!r}, but got {block.content_id!r}"
        )
    for name in ("prerequisite_id", "alternative_id"):
        ref = getattr(block, name)
        if ref is not None and store.get_content(ref) is None:
            raise HTTPException(409, f"{name}: must name a block in the catalog, but {ref!r} is unknown")
    existed = store.get_content(content_id) is not None
    stored = ContentBlock.model_validate(block.model_dump())
    store.upsert_content([stored])
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    log.info("content_upserted", content_id=content_id, created=not existed)
    return stored


@router.post(
    "/{content_id}/deactivate",
    response_model=ContentBlockOut,
    responses=error_responses(404),
    summary="Deactivate a content block",
)
def deactivate_content(content_id: ContentId, store: EventStoreDep, _key: AdminKey) -> ContentBlock:
    """Stop recommending the block; it stays in the catalog for history and logged decisions."""
    if not store.deactivate_content(content_id):
        raise HTTPException(404, f"content_id: no content block {content_id!r}")
    block = store.get_content(content_id)
    if block is None:  # erased between the two calls
        raise HTTPException(404, f"content_id: no content block {content_id!r}")
    log.info("content_deactivated", content_id=content_id)
    return block


def _invalid(field: str, reason: str) -> None:
    raise RequestValidationError([{"loc": ("body", field), "msg": reason, "type": "value_error"}])
