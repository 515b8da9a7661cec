"""Who may use the console: one shared token, checked on every request in constant time.

The token never travels in a URL after the first load: ``/login?token=...`` trades it for a
cookie (HttpOnly, SameSite=Strict) and redirects to ``/``, and the access log writes paths
without their query strings. Scripts send ``Authorization: Bearer TOKEN`` instead. The
cookie holds a value derived from the token (HMAC), not the token itself, and so does the
CSRF token that a page must echo in ``X-CSRF-Token`` on every POST.

Binding to anything but loopback without a token is refused: a console that shows faces
must not be one URL away from anyone on the network. On loopback a token is made up for the
run when none is given, and the login URL is printed once.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
from typing import Optional, Tuple

from common.errors import InputError

TOKEN_ENV = "MASK_PATROL_CONSOLE_TOKEN"
COOKIE = "mask_patrol_console"
CSRF_HEADER = "X-CSRF-Token"
MIN_TOKEN_BYTES = 32
MAKE_ONE = ("python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > F && chmod 600 F")


def write_token_file(folder: str, token: Optional[str] = None) -> Tuple[str, str]:
    """What MAKE_ONE does, from Python: a fresh token (or ``token``) in ``folder``/console.token,
    created 0600; returns (path, token). For tests, benchmarks and set-up scripts."""
    token = token or secrets.token_urlsafe(MIN_TOKEN_BYTES)
    path = os.path.join(folder, "console.token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return path, token


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for 0.0.0.0, names and the rest."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str, source: str) -> str:
    """``token`` stripped, or InputError naming ``source`` when it is too short to hold 32
    random bytes (hex, base64 or URL-safe base64), looks repetitive or has odd characters."""
    token = token.strip()
    if not re.match(r"^[A-Za-z0-9_\-+/=.~]+$", token):
        raise InputError("the token from %s is empty or has characters other than letters, "
                         "digits and -_+/=.~; make one with: %s" % (source, MAKE_ONE))
    if re.match(r"^[0-9a-fA-F]+$", token):
        size = len(token) // 2
    else:
        size = len(token.rstrip("=")) * 6 // 8
    if size < MIN_TOKEN_BYTES or len(set(token)) < 12:
        raise InputError("the token from %s holds about %d random bytes; it needs at least %d: "
                         "make one with: %s" % (source, size, MIN_TOKEN_BYTES, MAKE_ONE))
    return token


def read_token(token_file: Optional[str]) -> Optional[str]:
    """The token from ``token_file`` (which others must not be able to read) or from
    $MASK_PATROL_CONSOLE_TOKEN; None when neither is given."""
    if token_file:
        try:
            mode = os.stat(token_file).st_mode
            with open(token_file, "r") as handle:
                text = handle.read(4096)
        except OSError as exc:
            raise InputError("cannot read --token-file %s (%s); pass a readable file"
                             % (token_file, exc.strerror or exc))
        except UnicodeDecodeError:
            raise InputError("--token-file %s is not text; make one with: %s"
                             % (token_file, MAKE_ONE))
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError("--token-file %s can be read by other users (mode %03o); run "
                             "chmod 600 %s" % (token_file, mode & 0o777, token_file))
        return check_token(text, "--token-file %s" % token_file)
    if os.environ.get(TOKEN_ENV):
        return check_token(os.environ[TOKEN_ENV], "$" + TOKEN_ENV)
    return None


def resolve_token(host: str, token_file: Optional[str]) -> Tuple[str, bool]:
    """(token, made_up): the configured token, or a new one on loopback; InputError on any
    other host without one."""
    token = read_token(token_file)
    if token is not None:
        return token, False
    if not is_loopback(host):
        raise InputError("--host %s is not a loopback address, so the console needs a token of "
                         "at least %d random bytes: pass --token-file F or set %s (%s)"
                         % (host, MIN_TOKEN_BYTES, TOKEN_ENV, MAKE_ONE))
    return secrets.token_urlsafe(MIN_TOKEN_BYTES), True


class Guard:
    """Constant-time checks of the token, its cookie and the CSRF token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")
        self.cookie_value = self._derive(b"mask_patrol console cookie")
        self.csrf = self._derive(b"mask_patrol console csrf")

    def _derive(self, purpose: bytes) -> str:
        return hmac.new(self._token, purpose, hashlib.sha256).hexdigest()

    def token_ok(self, given: Optional[str]) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                         self._token)

    def cookie_ok(self, given: Optional[str]) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                         self.cookie_value.encode("ascii"))

    def csrf_ok(self, given: Optional[str]) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                         self.csrf.encode("ascii"))

    def bearer_ok(self, header: Optional[str]) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return self.token_ok(header[len("Bearer "):].strip())
