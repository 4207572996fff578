"""Users and ACLs in the local broker, made with Kafka's own tools (as an administrator
would with `kafka-configs.sh` and `kafka-acls.sh`), over its plain-text loopback listener."""

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from roadwatch.infra.errors import InfraError
from roadwatch.kafka.acls import Grant

SCRAM_MECHANISM = "SCRAM-SHA-512"
# Each tool is a JVM of its own: two at a time keeps both cores busy without crowding them.
AT_ONCE = 2


class KafkaAccess:
    """Adds SCRAM users and grants ACLs through the broker at `bootstrap`.

    The first tool run archives the classes it loaded in `class_archive` (a dynamic CDS
    archive), and later runs map them from it rather than load them from the jars: a tool's
    CPU time fell from 1.9 s to 0.8 s. A JVM ignores an archive it cannot use (another Java
    made it, or it is damaged) and loads from the jars, so the archive is only ever a cache.
    """

    def __init__(
        self, *, java: str, libs: Path, bootstrap: str, log: Path, class_archive: Path
    ) -> None:
        self._java = java
        self._libs = libs
        self._bootstrap = bootstrap
        self._log = log
        self._class_archive = class_archive
        self._archiving = True
        self._turns = asyncio.Semaphore(AT_ONCE)

    async def add_users(self, passwords: dict[str, str]) -> None:
        """Create each user, or set its password, for SCRAM-SHA-512."""
        await asyncio.gather(*(self._add_user(u, p) for u, p in passwords.items()))

    async def grant(self, grants: Iterable[Grant]) -> None:
        await asyncio.gather(*(self._grant(grant) for grant in grants))

    async def _add_user(self, user: str, password: str) -> None:
        # In a file, not on the command line, where every process could read it.
        # The file takes the value without the brackets of the command-line form.
        with tempfile.NamedTemporaryFile("w", suffix=".properties") as config:
            config.write(f"{SCRAM_MECHANISM}=iterations=8192,password={password}\n")
            config.flush()
            await self._tool(
                "kafka.admin.ConfigCommand",
                ["--alter", "--entity-type", "users", "--entity-name", user],
                ["--add-config-file", config.name],
                what=f"adding the Kafka user {user}",
                hidden=password,
            )

    async def _grant(self, grant: Grant) -> None:
        resources = [arg for t in grant.topics for arg in ("--topic", t)]
        resources += [arg for g in grant.groups for arg in ("--group", g)]
        if grant.transactional_prefix is not None:
            # One pattern type a command: the prefix is granted by a command of its own.
            await self._tool(
                "org.apache.kafka.tools.AclCommand",
                ["--add", "--allow-principal", f"User:{grant.user}"],
                ["--operation", grant.operation, "--resource-pattern-type", "prefixed"],
                ["--transactional-id", grant.transactional_prefix],
                what=f"granting {grant.operation} on transactions to {grant.user}",
            )
        if not resources:
            return
        await self._tool(
            "org.apache.kafka.tools.AclCommand",
            ["--add", "--allow-principal", f"User:{grant.user}"],
            ["--operation", grant.operation, *resources],
            what=f"granting {grant.operation} to {grant.user}",
        )

    async def _tool(self, main: str, *args: list[str], what: str, hidden: str = "") -> None:
        """Run one of Kafka's tools, its output logged with `hidden` blotted out."""
        command = [main, "--bootstrap-server", self._bootstrap, *(a for part in args for a in part)]
        run = partial(self._run, what=what, hidden=hidden)
        if self._class_archive.exists():
            code = await run([f"-XX:SharedArchiveFile={self._class_archive}", *command])
        elif self._archiving:
            # Each run that finds no archive writes one of its own, moved into place once
            # whole: runs side by side, here or in another process, never see half of one.
            made = self._class_archive.with_name(f".{uuid.uuid4().hex}.jsa")
            code = await run([f"-XX:ArchiveClassesAtExit={made}", *command])
            if code == 0 and made.exists():
                os.replace(made, self._class_archive)
            made.unlink(missing_ok=True)
            if code != 0:
                # A JVM that cannot write the archive does not start at all: the archive is
                # a cache, so the tool runs again without it, and no later one writes it.
                self._archiving = False
                code = await run(command)
        else:
            code = await run(command)
        if code != 0:
            raise InfraError("kafka", f"{what} failed with exit code {code}", self._log)

    async def _run(self, command: list[str], *, what: str, hidden: str) -> int:
        """One JVM running `command` (a tool's class and its arguments), logged; its exit code."""
        argv = [
            self._java,
            "-Xmx128m",
            # A tool runs for a second or two: the quick compiler and the simplest collector
            # spend a quarter less CPU on it.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            f"{self._libs}/*",
            *command,
        ]
        async with self._turns:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await process.communicate()
        with self._log.open("ab") as log:
            if hidden:
                output = output.replace(hidden.encode(), b"[hidden]")
            log.write(f"\n=== roadwatch: {what}: {' '.join(argv)}\n".encode() + output)
        assert process.returncode is not None
        return process.returncode
