"""The shape of the code: no package imports another in a circle, the API speaks to stores
only through their ports, and only the kafka package imports the Kafka client."""

import ast
from collections.abc import Iterator
from pathlib import Path

import roadwatch

ROOT = Path(roadwatch.__file__).parent
# The ports: what a store must do, and the types it speaks in. Any other module of
# stores/ is a backend, which only bootstrap, the CLI and infra may pick.
STORE_PORTS = {"roadwatch.stores.detection_store", "roadwatch.stores.users"}
KAFKA_CLIENT_ALLOWED = {"kafka", "runtime"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        yield ".".join(parts).removesuffix(".__init__"), path


def _imports(path: Path) -> Iterator[str]:
    """Every module an import names, at any depth of the file (lazy imports too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _package(module: str) -> str:
    """Its package under roadwatch; a module at the top (settings, domain…) is one alone."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        source = _package(module)
        for name in _imports(path):
            target = _package(name) if name.startswith("roadwatch.") else ""
            if source and target and target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one package (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in graph.get(node, ()):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_imports_another_in_a_circle() -> None:
    assert _circles(_package_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_the_api_reaches_stores_only_through_their_ports() -> None:
    reached = {
        f"{module}: {name}"
        for module, path in _modules()
        if _package(module) == "api"
        for name in _imports(path)
        if name.startswith("roadwatch.stores.")
        and not any(name == port or name.startswith(f"{port}.") for port in STORE_PORTS)
    }
    assert reached == set()


def test_only_the_kafka_package_and_the_runtime_import_the_kafka_client() -> None:
    importers = {
        module
        for module, path in _modules()
        if _package(module) not in KAFKA_CLIENT_ALLOWED
        and any(name == "aiokafka" or name.startswith("aiokafka.") for name in _imports(path))
    }
    assert importers == set()


def test_no_module_is_over_300_lines() -> None:
    long = {
        module: lines
        for module, path in _modules()
        if (lines := len(path.read_text().splitlines())) > 300
    }
    assert long == {}
