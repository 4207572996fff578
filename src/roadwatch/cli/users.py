"""`roadwatch users create`: a user made from the command line, the documented way to make
the first administrator (as Django's `createsuperuser`), on the machine that runs roadwatch
rather than through the network."""

import asyncio
import sys
from typing import Annotated

import typer

from roadwatch.cli.common import fail, local_settings
from roadwatch.errors import RoadwatchError

app = typer.Typer(help="Manage users.", no_args_is_help=True)
MAX_PASSWORD_LINE = 4096


class UnfitUser(RoadwatchError):
    """The username or the password breaks a rule; the message says which."""


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
) -> None:
    """Create a user. The password is asked for, or read as one line from standard input
    when that is not a terminal."""
    settings = local_settings()
    password = _password()
    try:
        asyncio.run(_create(settings.users_db_url, username, password, admin=admin))
    except RoadwatchError as error:
        raise fail(error) from None
    role = "administrator" if admin else "user"
    typer.echo(f"created the {role} {username}")


def _password() -> str:
    if sys.stdin.isatty():
        entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return entered
    # A line longer than any password the rules take is cut, not read whole.
    return sys.stdin.readline(MAX_PASSWORD_LINE).rstrip("\r\n")


async def _create(url: str, username: str, password: str, *, admin: bool) -> None:
    from pydantic import ValidationError

    from roadwatch.api.credential_rules import password_problem
    from roadwatch.api.schemas import UserCreate
    from roadwatch.api.security import Passwords
    from roadwatch.stores.users_postgres import PostgresUserStore

    try:
        body = UserCreate(username=username, password=password)
    except ValidationError as error:
        problem = error.errors(include_url=False, include_input=False)[0]
        raise UnfitUser(f"{problem['loc'][0]}: {problem['msg']}") from None
    guessable = password_problem(body.password, username=body.username)
    if guessable is not None:
        raise UnfitUser(f"password: {guessable}")
    users = PostgresUserStore(url)
    await users.open()
    try:
        password_hash = await Passwords().hash(body.password)
        await users.create(username=body.username, password_hash=password_hash, is_admin=admin)
    finally:
        await users.close()
