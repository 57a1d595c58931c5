"""A form the server refused, sent back on its page: what was typed (never a password) and a
message per wrong field, so the page shows each message under its field and puts the focus on
the first (web/templates/_field.html). The page is rendered again, not redirected to: a phone
then opens at the form, filled in as it was, instead of at a message at the top."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SentBack:
    form: str  # which form of the page (the dashboard holds several)
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message, in form order
    problem: str | None = None  # about the form as a whole: a limit, a permission

    @property
    def focus(self) -> str | None:
        """The first wrong field; None when only the form as a whole is wrong."""
        return next(iter(self.errors), None)
