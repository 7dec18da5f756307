"""A member at the keyboard: reads the sign-in pages' forms (stdlib html.parser) and
fills each field through its visible label, the way a person (or a screen reader user)
finds it, so a field without a label fails the test."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

HTTP_TIMEOUT = 10


@dataclass
class Form:
    action: str
    method: str
    hidden: list[tuple[str, str]] = field(default_factory=list)
    # id → {"name", "type", "value", "checked"}
    inputs: dict[str, dict] = field(default_factory=dict)
    # label text (whitespace collapsed) → the id its `for` names
    labels: dict[str, str] = field(default_factory=dict)
    # (name, value, text)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)

    def input_for_label(self, label: str) -> dict:
        """The input a label names: exact text, or the text before a hint."""
        for text, target in self.labels.items():
            if text == label or text.startswith(label + " "):
                if target not in self.inputs:
                    raise AssertionError(f"label {label!r} names no input (for={target!r})")
                return self.inputs[target]
        raise AssertionError(f"no label {label!r} on the form; labels: {list(self.labels)}")

    def button(self, text: str) -> tuple[str, str]:
        for name, value, caption in self.buttons:
            if caption == text:
                return name, value
        raise AssertionError(f"no button {text!r}; buttons: {[b[2] for b in self.buttons]}")


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.headings: list[str] = []
        self.alerts: list[str] = []
        self._label_for: str | None = None
        self._label_text: list[str] = []
        self._button: dict | None = None
        self._capture: list[str] | None = None
        self._capture_into: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            form = self.forms[-1]
            kind = a.get("type", "text")
            if kind == "hidden":
                form.hidden.append((a.get("name", ""), a.get("value", "")))
            else:
                form.inputs[a.get("id", a.get("name", ""))] = {
                    "name": a.get("name", ""),
                    "type": kind,
                    "value": a.get("value", ""),
                    "checked": "checked" in a,
                }
        elif tag == "label":
            self._label_for = a.get("for", "")
            self._label_text = []
        elif tag == "button" and self.forms:
            self._button = {"name": a.get("name", ""), "value": a.get("value", ""), "text": []}
        elif tag == "h1":
            self._capture, self._capture_into = [], self.headings
        elif a.get("role") == "alert":
            self._capture, self._capture_into = [], self.alerts

    def handle_endtag(self, tag):
        if tag == "label" and self._label_for is not None and self.forms:
            text = " ".join("".join(self._label_text).split())
            self.forms[-1].labels[text] = self._label_for
            self._label_for = None
        elif tag == "button" and self._button is not None:
            text = " ".join("".join(self._button["text"]).split())
            self.forms[-1].buttons.append((self._button["name"], self._button["value"], text))
            self._button = None
        elif self._capture is not None and tag in ("h1", "p", "div"):
            self._capture_into.append(" ".join("".join(self._capture).split()))
            self._capture = None

    def handle_data(self, data):
        if self._label_for is not None:
            self._label_text.append(data)
        if self._button is not None:
            self._button["text"].append(data)
        if self._capture is not None:
            self._capture.append(data)


@dataclass
class Page:
    url: str
    response: requests.Response
    forms: list[Form]
    heading: str
    alerts: list[str]

    def form(self, action: str) -> Form:
        for form in self.forms:
            if form.action == action:
                return form
        raise AssertionError(
            f"expected a form posting to {action} on {self.url} "
            f"(heading {self.heading!r}, alerts {self.alerts}, status {self.response.status_code})"
        )


def parse_page(response: requests.Response) -> Page:
    parser = _PageParser()
    parser.feed(response.text)
    return Page(
        url=response.url,
        response=response,
        forms=parser.forms,
        heading=parser.headings[0] if parser.headings else "",
        alerts=parser.alerts,
    )


class Member:
    """One member's browser session (cookie jar) against the authorization server.

    `facts` is one line of `patient-access members --details`; `read_code` is called
    after the identity answers are sent and returns the one-time code from the console.
    """

    def __init__(self, base_url: str, facts: dict, read_code) -> None:
        self.base_url = base_url
        self.facts = facts
        self.read_code = read_code
        self.session = requests.Session()
        self.pages: list[Page] = []

    def _follow(self, response: requests.Response, redirect_uri: str) -> Page | str:
        """Follows redirects on our server; stops at the app's redirect URI (nothing
        listens there) and returns that URL."""
        for _ in range(10):
            if response.status_code not in (301, 302, 303, 307, 308):
                page = parse_page(response)
                self.pages.append(page)
                return page
            location = urljoin(response.url, response.headers["Location"])
            if location.split("?")[0] == redirect_uri:
                return location
            if urlsplit(location).netloc != urlsplit(self.base_url).netloc:
                raise AssertionError(f"redirected off the server to {location}")
            response = self.session.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
        raise AssertionError("too many redirects")

    def _submit(self, page: Page, form: Form, values: dict[str, list[str]], button: str, redirect_uri: str):
        data = list(form.hidden)
        for name, items in values.items():
            data.extend((name, v) for v in items)
        name, value = form.button(button)
        if name:
            data.append((name, value))
        target = urljoin(page.url, form.action)
        response = self.session.post(target, data=data, allow_redirects=False, timeout=HTTP_TIMEOUT)
        return self._follow(response, redirect_uri)

    def connect(self, authorize_url: str, redirect_uri: str, tick: list[str] | None = None,
                decision: str = "Allow") -> str:
        """Signs in and answers the consent screen. `tick`: the data types to leave
        ticked (None = everything offered). Returns the redirect the app receives."""
        facts = self.facts
        response = self.session.get(authorize_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        page = self._follow(response, redirect_uri)

        form = page.form("/authorize/email")
        email = form.input_for_label("Email address")
        page = self._submit(page, form, {email["name"]: [facts["email"]]}, "Continue", redirect_uri)

        form = page.form("/authorize/identity")
        answers = {
            form.input_for_label("Date of birth")["name"]: [facts["birth_date"]],
            form.input_for_label("Member ID")["name"]: [facts["member_id"]],
            form.input_for_label("ZIP code")["name"]: [facts["postal_code"]],
        }
        mark = self.read_code.mark()
        page = self._submit(page, form, answers, "Continue", redirect_uri)

        form = page.form("/authorize/code")
        code = form.input_for_label("One-time code")
        page = self._submit(page, form, {code["name"]: [self.read_code(after=mark)]}, "Continue", redirect_uri)

        form = page.form("/authorize/consent")
        boxes = [i for i in form.inputs.values() if i["type"] == "checkbox"]
        offered = [b["value"] for b in boxes]
        chosen = offered if tick is None else tick
        missing = set(chosen) - set(offered)
        if missing:
            raise AssertionError(f"consent does not offer {missing}; it offers {offered}")
        name = boxes[0]["name"] if boxes else "type"
        self.consent_page = page
        result = self._submit(page, form, {name: chosen}, decision, redirect_uri)
        if not isinstance(result, str):
            raise AssertionError(
                f"after consent expected a redirect to {redirect_uri}, got page {result.heading!r} {result.alerts}"
            )
        return result


CODE_LINE = re.compile(r"one-time sign-in code for \S+: (\S+)")
