"""E-mail addresses as people type them, checked before anything is stored or mailed: exactly one
address, no display name, no line break, comma or NUL, no address a mail header cannot carry."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class NotAnAddress(ValueError):
    """The text is not one e-mail address; the message says why in words for the person."""


def normal_address(text: str) -> str:
    """The address as stored and compared: ASCII (an international domain in its xn-- form, so
    any mail relay takes it) and lower case. No DNS look-up: the syntax alone is judged."""
    try:
        checked = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        reason = str(error).rstrip(".")
        raise NotAnAddress(
            f"please enter one valid e-mail address ({reason[:1].lower()}{reason[1:]})"
        ) from None
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return checked.ascii_email.lower()
