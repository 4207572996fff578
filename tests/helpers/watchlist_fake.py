"""An in-memory WatchlistStore, held to the PostgreSQL store's contract by
tests/contract/test_watchlist_store.py, for unit tests of what is built on it."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from roadwatch.watchlists.rules import MAX_RULES, Rule, rule_to_json
from roadwatch.watchlists.store import Publish, RuleNameTaken, TooManyRules, Withdraw


class InMemoryWatchlistStore:
    def __init__(self, *, max_rules: int = MAX_RULES) -> None:
        self.max_rules = max_rules
        self._rules: dict[UUID, Rule] = {}
        self._changes: list[dict[str, Any]] = []

    async def page(self, *, skip: int = 0, limit: int = 100) -> list[Rule]:
        ordered = sorted(self._rules.values(), key=lambda r: (r.name.lower(), str(r.id)))
        return ordered[skip : skip + limit]

    async def count(self) -> int:
        return len(self._rules)

    async def get(self, rule_id: UUID) -> Rule | None:
        return self._rules.get(rule_id)

    async def changes(
        self, rule_id: UUID | None = None, *, skip: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        found = [c for c in self._changes if rule_id is None or c["rule_id"] == rule_id]
        return [dict(c) for c in found[skip : skip + limit]]

    async def create(self, rule: Rule, *, publish: Publish) -> Rule:
        if len(self._rules) >= self.max_rules:
            raise TooManyRules(self.max_rules)
        self._check_name(rule)
        await publish(rule)
        self._rules[rule.id] = rule
        self._record(rule.id, "created", rule.created_by, rule)
        return rule

    async def update(
        self, rule_id: UUID, change: Callable[[Rule], Rule], *, publish: Publish
    ) -> Rule | None:
        current = self._rules.get(rule_id)
        if current is None:
            return None
        changed = change(current)
        self._check_name(changed)
        await publish(changed)
        self._rules[rule_id] = changed
        self._record(rule_id, "updated", changed.updated_by, changed)
        return changed

    async def delete(self, rule_id: UUID, *, by: str, withdraw: Withdraw) -> bool:
        if rule_id not in self._rules:
            return False
        await withdraw(rule_id)
        del self._rules[rule_id]
        self._record(rule_id, "deleted", by, None)
        return True

    async def reconcile(
        self,
        seed: Rule,
        published: Callable[[], Awaitable[dict[UUID, Rule]]],
        *,
        publish: Publish,
        withdraw: Withdraw,
    ) -> int:
        rules = dict(self._rules)
        seeding = not self._changes and not rules
        if seeding:
            rules = {seed.id: seed}
        on_topic = await published()
        sent = 0
        for rule in rules.values():
            if on_topic.get(rule.id) != rule:
                await publish(rule)
                sent += 1
        for gone in on_topic.keys() - rules.keys():
            await withdraw(gone)
            sent += 1
        if seeding:
            self._rules = rules
            self._record(seed.id, "seeded", None, seed)
        return sent

    def _check_name(self, rule: Rule) -> None:
        folded = rule.name.lower()
        if any(r.name.lower() == folded and r.id != rule.id for r in self._rules.values()):
            raise RuleNameTaken(rule.name)

    def _record(self, rule_id: UUID, change: str, by: str | None, rule: Rule | None) -> None:
        self._changes.append(
            {
                "rule_id": rule_id,
                "change": change,
                "changed_by": by,
                "changed_at": datetime.now(UTC),
                "rule": None if rule is None else orjson.loads(rule_to_json(rule)),
            }
        )
