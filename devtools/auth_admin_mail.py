"""The mail catcher of the Auth stand-in (devtools/auth_admin.py): each message GoTrue would send is an RFC 822 file
in a folder (DEV_MAIL_DIR), `<UTC time>-<random>.eml`, there whole or not at all (written to a hidden temporary
file, then renamed). Also the invitation's link as GoTrue's mailer builds it, and where it leads the user after.

Sources (github.com/supabase/auth, as in devtools/auth_admin.py): internal/mailer/templatemailer/templatemailer.go
(InviteMail; getPath's `token=...&type=invite&redirect_to=...`; encodeRedirectURL escapes a redirect holding `&`,
`=` or `#`), with Supabase's invite path /auth/v1/verify (MAILER_URLPATHS_INVITE), resolved against the Auth URL;
internal/utilities/request.go (GetReferrer: `redirect_to` from the header, else the query, when IsRedirectURLValid,
else the Referer when valid, else the site URL) and url_validator.go (isLocalhost). No redirect allow list
(GOTRUE_URI_ALLOW_LIST) here: only the site's own host, and loopback addresses, are accepted.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import os
import re
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlsplit

SENDER = "Project B <noreply@project-b.local>"
INVITE_SUBJECT = "You have been invited"
_LOCALHOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"})  # noqa: S104 (names, not a bind)


def _is_localhost(hostname: str) -> bool:
    hostname = hostname.lower()
    return hostname in _LOCALHOSTS or hostname.endswith(".localhost")


def allowed_redirect(url: str, site_url: str) -> bool:
    """GoTrue's IsRedirectURLValid without an allow list: the site's scheme and host (any port on localhost), or a
    loopback address."""
    if not url:
        return False
    try:
        base, target = urlsplit(site_url), urlsplit(url)
        same_port = base.port == target.port
    except ValueError:
        return False
    host = target.hostname or ""
    if base.hostname == host and base.scheme == target.scheme and (same_port or _is_localhost(host)):
        return True
    if re.fullmatch(r"[0-9]+", host):
        return False  # an IP address in decimal form
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_target(query: str, headers: dict[str, str], site_url: str) -> str:
    """GoTrue's GetReferrer: where the invitation's link leads once verified."""
    requested = headers.get("redirect_to") or next(iter(parse_qs(query).get("redirect_to", [])), "")
    for candidate in (requested, headers.get("referer", "")):
        if allowed_redirect(candidate, site_url):
            return candidate
    return site_url


def invite_link(auth_url: str, token_hash: str, redirect_to: str) -> str:
    """The invitation's ConfirmationURL: `{auth_url}/verify?token=<hash>&type=invite&redirect_to=<redirect>`."""
    if any(char in redirect_to for char in "&=#"):
        redirect_to = quote_plus(redirect_to, safe="")  # Go's url.QueryEscape
    return f"{auth_url}/verify?token={quote_plus(token_hash, safe='')}&type=invite&redirect_to={redirect_to}"


def invitation(to: str, link: str, site_url: str) -> EmailMessage:
    """The invitation to `to`, a text body holding the link."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = INVITE_SUBJECT
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="project-b.local")
    text = f"You have been invited to create a user on {site_url}.\nFollow this link to accept the invite:\n\n{link}\n"
    readable = text.isascii() and max(len(line) for line in text.splitlines()) <= 998  # RFC 5322's line limit
    message.set_content(text, cte="7bit" if readable else None)  # 7bit: `cat` shows the link whole
    return message


def deliver(mail_dir: Path, message: EmailMessage) -> Path:
    """Write `message` to `mail_dir` (created if missing) as a new .eml file, in one rename; its path."""
    mail_dir.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}.eml"
    partial = mail_dir / f".{name}.partial"  # not *.eml: a reader never sees half a message
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes(policy=email.policy.default))
        os.replace(partial, mail_dir / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return mail_dir / name


def read_messages(mail_dir: Path) -> list[EmailMessage]:
    """The messages in `mail_dir`, oldest first (for tests and people: `python -c` or any mail reader)."""
    messages = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages
