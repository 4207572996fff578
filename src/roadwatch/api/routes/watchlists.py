from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from roadwatch.api.deps import Administrator, CurrentUser, Services
from roadwatch.api.errors import RuleNotFound, responses
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.watchlist_schemas import (
    RuleChange,
    RuleChangeOut,
    RuleCreate,
    RuleOut,
    RulePage,
)

router = APIRouter(tags=["watchlists"], route_class=JsonTextRoute)

CHANGED = "Takes effect in every running indexer within a second; recorded with who and when."


@router.get("/watchlists", responses=responses(401, 422, 503), summary="Watchlist rules, by name")
async def list_rules(
    _user: CurrentUser,
    services: Services,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RulePage:
    watchlists = services.watchlists
    rules = await watchlists.page(skip=skip, limit=limit)
    return RulePage(
        items=[RuleOut.of(rule) for rule in rules],
        total=await watchlists.count(),
        skip=skip,
        limit=limit,
    )


@router.get(
    "/watchlist-changes",
    responses=responses(401, 403, 422, 503),
    summary="Every change of the rules, oldest first (administrators)",
    description="Which rule, what changed, who changed it, when, and how the rule stood "
    "afterwards; `rule` narrows it to one rule, deleted or not.",
)
async def rule_changes(
    _admin: Administrator,
    services: Services,
    rule: Annotated[UUID | None, Query(description="Only the changes of this rule")] = None,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RuleChangeOut]:
    changes = await services.watchlists.changes(rule, skip=skip, limit=limit)
    return [RuleChangeOut(**change) for change in changes]


@router.get("/watchlists/{rule_id}", responses=responses(401, 404, 422, 503), summary="One rule")
async def get_rule(rule_id: UUID, _user: CurrentUser, services: Services) -> RuleOut:
    rule = await services.watchlists.get(rule_id)
    if rule is None:
        raise RuleNotFound
    return RuleOut.of(rule)


@router.post(
    "/watchlists",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 409, 422, 503),
    summary="Add a rule (administrators)",
    description="A detection matches when every field the rule sets matches: any of its "
    "categories, the make, the model (whole values, whatever their case), and the years, "
    f"inclusive. {CHANGED}",
)
async def create_rule(body: RuleCreate, admin: Administrator, services: Services) -> RuleOut:
    rule = body.rule(created_by=admin.username)
    return RuleOut.of(await services.watchlists.create(rule))


@router.patch(
    "/watchlists/{rule_id}",
    responses=responses(400, 401, 403, 404, 409, 422, 503),
    summary="Change a rule (administrators)",
    description=f"Only the fields given change; null clears an optional one. {CHANGED}",
)
async def change_rule(
    rule_id: UUID, body: RuleChange, admin: Administrator, services: Services
) -> RuleOut:
    rule = await services.watchlists.update(rule_id, body.changes(), by=admin.username)
    if rule is None:
        raise RuleNotFound
    return RuleOut.of(rule)


@router.delete(
    "/watchlists/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422, 503),
    summary="Delete a rule (administrators)",
    description=CHANGED,
)
async def delete_rule(rule_id: UUID, admin: Administrator, services: Services) -> Response:
    if not await services.watchlists.delete(rule_id, by=admin.username):
        raise RuleNotFound
    return Response(status_code=status.HTTP_204_NO_CONTENT)
