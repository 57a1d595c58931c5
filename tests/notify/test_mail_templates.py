"""Every kind of mail in web/templates/emails/, rendered as compose renders it: an HTML document
with what axe asks of a page (lang, a title that is the subject, one main landmark, one h1), plain
text that mail clients can wrap on a phone, and a subject that is one line."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import pytest
from jinja2 import Environment, meta, nodes

from service.notify.mail import EMAILS, Rendered, render

KINDS = sorted(p.name for p in EMAILS.iterdir() if p.is_dir() and not p.name.startswith("_"))
PARTS = ("subject.txt", "body.txt", "body.html")

# A value for each variable the templates use, by its name; a variable named `..._url` gets a
# link. A new kind whose templates use only these names needs nothing added here.
SAMPLES: dict[str, Any] = {
    "owner_name": "Alice",
    "owner_email": "alice@example.org",
    "friend_name": "Bob",
    "friend_email": "bob@example.org",
    "other_name": "Carol",
    "admin_name": "Dana",
    "inviter_name": "Alice",
    "inviter_email": "alice@example.org",
    "email": "carol@example.org",
    "circle_name": "The Martins",
    "expires_on": "3 March 2026",
    "valid_days": 7,
    "open": 2,
    "count": 3,
    "found": 4,
    "answers": [
        {"photo": "Facebook, 3 March 2019, “Summer at the lake”", "answer": "removed"},
        {"photo": "Mastodon, 4 May 2021", "answer": "says it is not you"},
    ],
    "friends": [
        {
            "name": "Bob",
            "url": "https://photo-removal.example.org/friends/1#checklist",
            "answers": [{"photo": "Instagram, 2 photos", "answer": "made private"}],
        }
    ],
    "tally": "5 removed, 1 made private, 1 kept",
    "checked_on": "27 November 2026",
    "photo": "https://social.example.org/media/1.jpg",
    "post_url": "https://social.example.org/p/1",
    "reason": "I don't know this person: my mum died in 2019",
    "also_asking": [],
    "again": False,
    "accepted": False,
    "last": False,
    "withdrawn": False,
}
# The other branches of the templates, each rendered too.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "checklist": [{"open": 1}],
    "digest": [{"count": 1, "friends": [{**SAMPLES["friends"][0], "name": "Al"}] * 2}],
    "export_reminder": [{"last": True}],
    "friend_declined": [{"withdrawn": True}],
    "invitation": [{"again": True}, {"accepted": True}, {"also_asking": ["Carol", "Dan"]}],
    "list_answered": [{"count": 1, "open": 0}],
    "photo_back": [{"post_url": None}],
    "reminder": [{"open": 1, "count": 1, "last": True}],
    "same_face": [{"photo": "media/posts/201903/17970322908340048.jpg"}],
    "scan_done": [{"found": 1}],
}
# Names as people type them: the title and heading must show them, not read them as markup.
MARKUP_IN_NAMES = '"Al" <b>&amp;</b> O\'Neil'

LINK = re.compile(r"https?://\S+")


def _variables(kind: str) -> set[str]:
    found: set[str] = set()
    for part in PARTS:
        tree = Environment().parse((EMAILS / kind / part).read_text())
        # meta counts the macros a child template imports (from _parts.html) as variables too.
        imported = {
            n if isinstance(n, str) else n[1]
            for i in tree.find_all(nodes.FromImport)
            for n in i.names
        }
        found |= meta.find_undeclared_variables(tree) - imported
    return found - {"subject"}  # render passes the subject to the HTML itself


def _context(kind: str, overrides: dict[str, Any]) -> dict[str, Any]:
    names = _variables(kind)
    unknown = sorted(n for n in names if n not in SAMPLES and not n.endswith("_url"))
    if unknown:
        pytest.fail(f"{kind} uses {unknown}: give each a sample value in SAMPLES")
    context = {n: SAMPLES.get(n, f"https://photo-removal.example.org/{n}/t0ken") for n in names}
    if overrides.get("markup"):
        overrides = {n: MARKUP_IN_NAMES for n in names if n.endswith("_name")}
    return {**context, **overrides}


def _cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        overrides = [{}, {"markup": True}, *VARIANTS.get(kind, [])]
        for n, override in enumerate(overrides):
            cases.append(pytest.param(kind, override, id=f"{kind}-{n}"))
    return cases


def _rendered(kind: str, overrides: dict[str, Any]) -> Rendered:
    return render(kind, _context(kind, overrides))


class Outline(HTMLParser):
    """What axe reads of a document: its doctype, language, title, landmarks and headings."""

    VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.doctype, self.lang, self.charset = "", "", ""
        self.tags: Counter[str] = Counter()
        self.opened: list[str] = []
        self.misnested: list[str] = []
        self.title, self.heading, self.outside_main = "", "", ""
        self.heading_in_main = False
        self.links: list[str] = []
        self.feed(html)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags[tag] += 1
        if tag == "html":
            self.lang = found.get("lang") or ""
        elif tag == "meta" and "charset" in found:
            self.charset = (found["charset"] or "").lower()
        elif tag == "h1":
            self.heading_in_main = "main" in self.opened
        elif tag == "a":
            self.links.append("")
        if tag not in self.VOID:
            self.opened.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.opened or self.opened[-1] != tag:
            self.misnested.append(tag)
            return
        self.opened.pop()

    def handle_data(self, data: str) -> None:
        if "title" in self.opened:
            self.title += data
        if "h1" in self.opened:
            self.heading += data
        if "a" in self.opened:
            self.links[-1] += data
        if "body" in self.opened and "main" not in self.opened:
            self.outside_main += data


def test_it_finds_every_kind_of_mail_with_its_three_parts() -> None:
    assert len(KINDS) >= 10
    for kind in KINDS:
        assert all((EMAILS / kind / part).is_file() for part in PARTS), kind


@pytest.mark.parametrize(("kind", "overrides"), _cases())
def test_it_renders_each_html_mail_as_a_whole_document(
    kind: str, overrides: dict[str, Any]
) -> None:
    mail = _rendered(kind, overrides)
    page = Outline(mail.html)
    assert page.doctype == "doctype html", kind
    assert page.lang == "en" and page.charset == "utf-8", kind
    assert page.tags["title"] == 1 and page.title == mail.subject, kind
    assert page.tags["main"] == 1, f"{kind}: one main landmark"
    assert page.tags["h1"] == 1 and page.heading_in_main, f"{kind}: one h1, in the main"
    assert 0 < len(page.heading.strip()) <= 80, f"{kind}: a short heading: {page.heading!r}"
    assert page.outside_main.strip() == "", f"{kind}: text outside the main landmark"
    assert all(text.strip() for text in page.links), f"{kind}: a link without text"
    assert page.misnested == [] and page.opened == [], f"{kind}: tags not closed in order"


@pytest.mark.parametrize(("kind", "overrides"), _cases())
def test_it_writes_each_paragraph_of_the_text_on_one_line(
    kind: str, overrides: dict[str, Any]
) -> None:
    """Mail clients wrap plain text to the screen; a break typed into a paragraph cuts a
    sentence in two on a phone. A paragraph is one line; the lines after it in its block can
    only be the items of a list, or a link or file name standing alone."""
    text = _rendered(kind, overrides).text
    assert not text.startswith("\n") and "\n\n\n" not in text, f"{kind}: stray blank lines"
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert all(line == line.rstrip() for line in lines), f"{kind}: trailing space: {block!r}"
        for line in lines[1:]:
            assert line.startswith("- ") or ("/" in line and " " not in line), (
                f"{kind}: a line break inside a paragraph: {block!r}"
            )


@pytest.mark.parametrize(("kind", "overrides"), _cases())
def test_it_puts_each_link_of_the_text_on_a_line_of_its_own(
    kind: str, overrides: dict[str, Any]
) -> None:
    """A link set in a sentence takes the punctuation after it along when a client links it,
    and wraps anywhere; on its own line it is whole."""
    text = _rendered(kind, overrides).text
    for line in text.splitlines():
        if line.startswith("- "):
            continue  # an item of a list names the photo it is about, a link or a file
        for link in LINK.findall(line):
            assert line == link, f"{kind}: a link inside a line: {line!r}"


@pytest.mark.parametrize("kind", KINDS)
def test_it_writes_each_subject_as_one_line(kind: str) -> None:
    source = (EMAILS / kind / "subject.txt").read_text()
    assert "\n" not in source.removesuffix("\n") and source.strip() == source.rstrip("\n")
    for overrides in [{}, *VARIANTS.get(kind, [])]:
        raw = Environment().from_string(source).render(_context(kind, overrides))
        subject = _rendered(kind, overrides).subject
        assert raw.strip() == subject, f"{kind}: stray white space in {raw!r}"
        assert subject[0].isupper() or subject[0].isdigit(), subject
        assert not subject.endswith((".", ":", ",")), subject
