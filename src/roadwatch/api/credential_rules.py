"""What a username and a password must be (NIST SP 800-63B for passwords)."""

import re

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from roadwatch.text import UnsafeText, normal_text, normalise

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"
MIN_PASSWORD_CHARACTERS = 12
MIN_DISTINCT_CHARACTERS = 5
# The 30,000 passwords seen most often in breaches, as zxcvbn ships them (lower case).
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])


def username_key(username: str) -> str:
    """What makes two usernames one: `Admin`, `ADMIN` and a full-width `admin` are `admin`."""
    try:
        return normalise(username).casefold()
    except UnsafeText:
        return username.casefold()  # no user has such a name; any key will do


def normal_username(value: object) -> object:
    """A username in its normal form (NFKC), for the schema's own rules to check."""
    try:
        return normal_text(value)
    except ValueError as unsafe:
        raise ValueError(f"the username {unsafe}") from None


def could_be_a_username(value: str) -> bool:
    """Whether any user could have this name; a login under another goes no further."""
    try:
        return re.fullmatch(USERNAME_PATTERN, normalise(value)) is not None
    except UnsafeText:
        return False


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """Why the password may not be used, or None if it may."""
    if any(not character.isprintable() and character != " " for character in password):
        return "the password may not hold control or invisible characters"
    if len(password.replace(" ", "")) < MIN_PASSWORD_CHARACTERS:
        return f"the password needs at least {MIN_PASSWORD_CHARACTERS} characters besides spaces"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"the password needs at least {MIN_DISTINCT_CHARACTERS} different characters"
    folded = password.casefold()
    if folded in COMMON_PASSWORDS or folded.replace(" ", "") in COMMON_PASSWORDS:
        return "the password is one of the most common ones; choose another"
    if username is not None and username_key(username) in folded:
        return "the password may not contain the username"
    return None
