"""Which enabled rules a detection matches, at a cost that does not grow with the rules.

Each rule is filed under the exact values of the text fields it sets (category, make, model),
one table per combination of those fields. A detection is looked up in each table with its
own values, so it meets only rules that already agree on every text field; what is left to
check is the years. At most eight tables, times the parts of a composite category: the cost
per detection is flat in the number of rules. Results are remembered per vehicle (category,
make, model, year), since the same vehicles pass again and again.
"""

from collections import defaultdict
from collections.abc import Iterable

from roadwatch.domain import Detection, RuleRef
from roadwatch.watchlists.rules import Rule, categories_of, fold

# Which of (category, make, model) a rule sets: one lookup table for each.
Shape = tuple[bool, bool, bool]
Key = tuple[str | None, str | None, str | None]
Vehicle = tuple[str, str, str, int]

REMEMBERED_VEHICLES = 65_536


class RuleIndex:
    """An immutable view of the rules in force; a change of rules builds a new one."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules = {rule.id: rule for rule in rules}
        self.enabled = sum(rule.enabled for rule in self.rules.values())
        tables: dict[Shape, dict[Key, list[Rule]]] = defaultdict(lambda: defaultdict(list))
        for rule in self.rules.values():
            if not rule.enabled:
                continue
            make = fold(rule.make) if rule.make else None
            model = fold(rule.model) if rule.model else None
            shape = (bool(rule.categories), make is not None, model is not None)
            categories: set[str | None] = {
                c for given in rule.categories for c in categories_of(given)
            }
            for category in categories or {None}:
                tables[shape][(category, make, model)].append(rule)
        self._tables = {shape: dict(table) for shape, table in tables.items()}
        self._seen: dict[Vehicle, tuple[RuleRef, ...]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def matches(self, detection: Detection) -> tuple[RuleRef, ...]:
        """The enabled rules that match, ordered by name then id; () if none does."""
        vehicle = (detection.category, detection.make, detection.model, detection.year)
        found = self._seen.get(vehicle)
        if found is None:
            found = self._match(*vehicle)
            if len(self._seen) >= REMEMBERED_VEHICLES:
                self._seen.clear()
            self._seen[vehicle] = found
        return found

    def _match(self, category: str, make: str, model: str, year: int) -> tuple[RuleRef, ...]:
        folded_make, folded_model = fold(make), fold(model)
        categories: Iterable[str | None] = categories_of(category)
        matched: dict[RuleRef, None] = {}
        for (by_category, by_make, by_model), table in self._tables.items():
            for part in categories if by_category else (None,):
                key = (part, folded_make if by_make else None, folded_model if by_model else None)
                for rule in table.get(key, ()):
                    if _in_years(rule, year):
                        matched[rule.ref] = None
        return tuple(sorted(matched, key=lambda ref: (ref.name.casefold(), str(ref.id))))


def _in_years(rule: Rule, year: int) -> bool:
    return (rule.year_from is None or rule.year_from <= year) and (
        rule.year_to is None or year <= rule.year_to
    )
