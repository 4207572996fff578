"""What a username and a password must be (NIST SP 800-63B for passwords)."""

import re

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from roadwatch.text import UnsafeText, normal_text, normalise

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"
MIN_PASSWORD_CHARACTERS = 12
MIN_DISTINCT_CHARACTERS = 5
# zxcvbn's score 3: "safely unguessable: moderate protection from offline slow-hash
# scenario", which an Argon2id hash is.
MIN_PASSWORD_GUESSES = 10**8
ZXCVBN_MAX_LENGTH = 72
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
    """Why the password may not be used, or None if it may. The last check (zxcvbn) takes
    milliseconds of CPU: run it only for a request already authorised."""
    return password_shape_problem(password, username=username) or _guessable(password, username)


def password_shape_problem(password: str, *, username: str | None = None) -> str | None:
    """The checks that cost next to nothing, which a request body is held to as it is read:
    characters, length, variety, the common list, the username."""
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


def _guessable(password: str, username: str | None) -> str | None:
    """Why zxcvbn finds the password guessable in under MIN_PASSWORD_GUESSES, or None. It
    knows words, names, keyboard patterns, dates, sequences, repeats and l33t spellings;
    the username and the product's name count as words too."""
    context = ["roadwatch", *([username_key(username)] if username else [])]
    # zxcvbn reads at most 72 characters; more only adds to what it finds.
    estimate = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=context)
    if estimate["guesses"] >= MIN_PASSWORD_GUESSES:
        return None
    feedback = estimate["feedback"]
    why = feedback.get("warning") or "it follows a pattern that is quick to guess"
    hint = " ".join(feedback.get("suggestions") or [])
    return (
        f"the password could be guessed in about 10^{estimate['guesses_log10']:.0f} tries "
        f"(at least 10^8 are needed): {why.rstrip('.')}. {hint}".strip()
    )
