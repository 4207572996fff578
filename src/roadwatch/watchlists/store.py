"""What the watchlists feature needs of a store, which the stores package implements."""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from uuid import UUID

from roadwatch.errors import Conflict
from roadwatch.watchlists.rules import Rule

Publish = Callable[[Rule], Awaitable[None]]
Withdraw = Callable[[UUID], Awaitable[None]]


class RuleTopic(Protocol):
    """Where changes of rules are published for every indexer (watchlists/topic.py)."""

    async def put(self, rule: Rule) -> None: ...

    async def remove(self, rule_id: UUID) -> None: ...


class RuleNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rule named {name!r} exists already")


class TooManyRules(Conflict):
    def __init__(self, limit: int) -> None:
        super().__init__(f"there are {limit:,} rules already, the most a system may hold")


class WatchlistStore(Protocol):
    """The rules, and a record of every change. Each change calls `publish` or `withdraw`
    before it is made for good, and is not made if that raises."""

    async def page(self, *, skip: int = 0, limit: int = 100) -> list[Rule]: ...

    async def count(self) -> int: ...

    async def get(self, rule_id: UUID) -> Rule | None: ...

    async def changes(
        self, rule_id: UUID | None = None, *, skip: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    async def create(self, rule: Rule, *, publish: Publish) -> Rule: ...

    async def update(
        self, rule_id: UUID, change: Callable[[Rule], Rule], *, publish: Publish
    ) -> Rule | None: ...

    async def delete(self, rule_id: UUID, *, by: str, withdraw: Withdraw) -> bool: ...

    async def reconcile(
        self,
        seed: Rule,
        published: Callable[[], Awaitable[dict[UUID, Rule]]],
        *,
        publish: Publish,
        withdraw: Withdraw,
    ) -> int: ...
