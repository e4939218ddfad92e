"""Where a desktop sign-in is kept: only its refresh token is secret, and it never leaves these stores in clear.

* `KeyringStore`: the OS keyring (Windows Credential Manager, macOS Keychain, Secret Service) through the `keyring`
  package, when it is installed and has a usable backend;
* `FileStore`: a JSON file `credentials.json` in the user config dir, created and rewritten with mode 0600.

`default_store()` picks the keyring when usable, else the file. The environment variable
`ITWIN_INSIGHTS_TOKEN_STORE` forces one: `keyring`, `file`, or `auto` (the default).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from platformdirs import user_config_dir

from ..errors import AuthError, ConfigError

__all__ = [
    "APP_NAME",
    "TOKEN_STORE_ENV",
    "FileStore",
    "KeyringStore",
    "StoredLogin",
    "TokenStore",
    "default_credentials_path",
    "default_store",
    "forget_remembered_logins",
    "has_stored_login",
    "keyring_available",
    "remembered_login",
]

log = logging.getLogger(__name__)

APP_NAME = "itwin-insights-mcp"
TOKEN_STORE_ENV = "ITWIN_INSIGHTS_TOKEN_STORE"  # noqa: S105  # a variable name, not a secret
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class StoredLogin:
    """What a sign-in leaves behind. Only `refresh_token` is secret; it is kept out of `repr`."""

    authority: str
    client_id: str
    refresh_token: str = field(repr=False)
    scope: str = ""
    subject: str | None = None
    email: str | None = None
    name: str | None = None
    signed_in_at: float | None = None  # epoch seconds
    expires_at: float | None = None  # refresh token expiry (epoch seconds), when the IdP said

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": self.authority,
            "client_id": self.client_id,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
            "signed_in_at": self.signed_in_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: object) -> StoredLogin | None:
        """The record, or None when `data` is not a well-formed one."""
        if not isinstance(data, dict):
            return None
        authority, client_id, token = data.get("authority"), data.get("client_id"), data.get("refresh_token")
        if not (isinstance(authority, str) and isinstance(client_id, str) and isinstance(token, str) and token):
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            authority=authority,
            client_id=client_id,
            refresh_token=token,
            scope=text("scope") or "",
            subject=text("subject"),
            email=text("email"),
            name=text("name"),
            signed_in_at=number("signed_in_at"),
            expires_at=number("expires_at"),
        )


def _key(authority: str, client_id: str) -> str:
    return f"{authority.rstrip('/')}|{client_id}"


class TokenStore(Protocol):
    """Where the refresh token of a sign-in is kept, keyed by (authority, client_id).

    `client_id=None` in `load`/`delete` means "the most recent sign-in at this authority".
    """

    kind: str

    @property
    def location(self) -> str:
        """Where the store keeps its data, for display (never the data)."""

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None: ...

    def save(self, login: StoredLogin) -> None: ...

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        """Remove the sign-in; True when there was one."""


def default_credentials_path() -> Path:
    """`credentials.json` in the user config dir (e.g. ~/.config/itwin-insights-mcp on Linux)."""
    return Path(user_config_dir(APP_NAME, appauthor=False)) / "credentials.json"


class FileStore:
    """A JSON file readable by its owner only (0600), rewritten atomically; loose permissions are tightened on read.

    On Windows, POSIX modes do not apply; the file lives in the user's own profile directory.
    """

    kind = "file"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_credentials_path()

    @property
    def location(self) -> str:
        return str(self.path)

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None:
        data = self._read()
        authority = authority.rstrip("/")
        logins = data.get("logins", {})
        if client_id is None:
            client_id = data.get("current", {}).get(authority)
        if client_id is None:
            candidates = [v for v in logins.values() if isinstance(v, dict) and v.get("authority") == authority]
            return StoredLogin.from_json(candidates[0]) if len(candidates) == 1 else None
        return StoredLogin.from_json(logins.get(_key(authority, client_id)))

    def save(self, login: StoredLogin) -> None:
        data = self._read()
        authority = login.authority.rstrip("/")
        data.setdefault("logins", {})[_key(authority, login.client_id)] = login.to_json()
        data.setdefault("current", {})[authority] = login.client_id
        self._write(data)
        forget_remembered_logins()

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        data = self._read()
        authority = authority.rstrip("/")
        current = data.get("current", {})
        if client_id is None:
            client_id = current.get(authority)
            if client_id is None:
                found = self.load(authority)
                client_id = found.client_id if found else None
        if client_id is None or _key(authority, client_id) not in data.get("logins", {}):
            return False
        del data["logins"][_key(authority, client_id)]
        if current.get(authority) == client_id:
            del current[authority]
        if data["logins"]:
            self._write(data)
        else:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise AuthError(f"Could not delete the credentials file {self.path} ({exc.strerror}).") from None
        forget_remembered_logins()
        return True

    # The file: {"version": 1, "logins": {"<authority>|<client_id>": {...}}, "current": {"<authority>": "<id>"}}

    def _read(self) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except FileNotFoundError:
            return {"version": 1, "logins": {}, "current": {}}
        except OSError as exc:
            raise AuthError(
                f"Could not read the credentials file {self.path} ({exc.strerror}). Delete it and run "
                "`itwin-insights-mcp login` again."
            ) from None
        with os.fdopen(fd, "rb") as fh:
            self._tighten(fh.fileno())
            raw = fh.read()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("logins"), dict):
            log.warning("The credentials file %s is not readable JSON; treating it as empty.", self.path)
            return {"version": 1, "logins": {}, "current": {}}
        if not isinstance(data.get("current"), dict):
            data["current"] = {}
        return data

    def _tighten(self, fd: int) -> None:
        if os.name != "posix":
            return
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise AuthError(
                f"The credentials file {self.path} belongs to another user; it was not used. Delete it and run "
                "`itwin-insights-mcp login` again."
            )
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning(
                "The credentials file %s was readable by others (mode %o); tightened it to 600.",
                self.path,
                st.st_mode & 0o777,
            )

    def _write(self, data: dict[str, Any]) -> None:
        data["version"] = 1
        payload = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    if hasattr(os, "fchmod"):
                        os.fchmod(fh.fileno(), 0o600)  # exactly 0600 whatever the umask
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise AuthError(f"Could not write the credentials file {self.path} ({exc.strerror}).") from None


class _KeyringBackend(Protocol):
    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


def keyring_available() -> bool:
    """True when the `keyring` package is installed and its backend can store secrets (not the `fail`/`null` one)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return False
        priority = float(backend.priority)
    except Exception:  # ImportError, NoKeyringError, a backend that fails to initialise: no keyring
        return False
    return priority > 0


class KeyringStore:
    """The OS keyring via `keyring`: service `itwin-insights-mcp`, one entry per (authority, client_id)."""

    kind = "keyring"
    SERVICE = APP_NAME

    def __init__(self, backend: _KeyringBackend | None = None) -> None:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        self._backend = backend

    @property
    def location(self) -> str:
        name = type(self._backend).__module__.removeprefix("keyring.backends.")
        return f"OS keyring ({name}), service '{self.SERVICE}'"

    def _call(self, action: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise AuthError(
                f"The OS keyring could not {action} the sign-in ({type(exc).__name__}). Unlock the keyring, or set "
                f"{TOKEN_STORE_ENV}=file to keep it in a 0600 file instead."
            ) from None

    def _current(self, authority: str) -> str:
        return f"current|{authority}"

    def load(self, authority: str, client_id: str | None = None) -> StoredLogin | None:
        authority = authority.rstrip("/")
        if client_id is None:
            client_id = self._call("read", lambda: self._backend.get_password(self.SERVICE, self._current(authority)))
            if not client_id:
                return None
        raw = self._call("read", lambda: self._backend.get_password(self.SERVICE, _key(authority, str(client_id))))
        if not raw:
            return None
        try:
            return StoredLogin.from_json(json.loads(raw))
        except ValueError:
            return None

    def save(self, login: StoredLogin) -> None:
        authority = login.authority.rstrip("/")
        record = json.dumps(login.to_json(), separators=(",", ":"))
        self._call("save", lambda: self._backend.set_password(self.SERVICE, _key(authority, login.client_id), record))
        self._call("save", lambda: self._backend.set_password(self.SERVICE, self._current(authority), login.client_id))
        forget_remembered_logins()

    def delete(self, authority: str, client_id: str | None = None) -> bool:
        authority = authority.rstrip("/")
        current = self._call("read", lambda: self._backend.get_password(self.SERVICE, self._current(authority)))
        client_id = client_id or current
        if not client_id:
            return False
        found = self.load(authority, client_id) is not None
        if found:
            self._delete_entry(_key(authority, client_id))
        if current == client_id:
            self._delete_entry(self._current(authority))
        forget_remembered_logins()
        return found

    def _delete_entry(self, username: str) -> None:
        try:
            if self._backend.get_password(self.SERVICE, username) is not None:
                self._backend.delete_password(self.SERVICE, username)
        except Exception as exc:
            raise AuthError(
                f"The OS keyring could not delete the sign-in ({type(exc).__name__}). Remove the "
                f"'{self.SERVICE}' entries with your keyring manager."
            ) from None


def default_store(choice: str | None = None, environ: Mapping[str, str] | None = None) -> TokenStore:
    """The keyring when usable, else the 0600 file.

    `choice` (`auto`, `keyring` or `file`; e.g. from a setting) wins; without it `ITWIN_INSIGHTS_TOKEN_STORE` decides.
    """
    if not choice:
        env = os.environ if environ is None else environ
        choice = env.get(TOKEN_STORE_ENV, "")
    choice = choice.strip().lower() or "auto"
    if choice == "file":
        return FileStore()
    if choice == "keyring":
        if not keyring_available():
            raise ConfigError(
                f"{TOKEN_STORE_ENV}=keyring, but no usable OS keyring was found (is the `keyring` package installed "
                f"and a keyring service running?). Set {TOKEN_STORE_ENV}=file to use a 0600 file instead."
            )
        return KeyringStore()
    if choice != "auto":
        raise ConfigError(f"{TOKEN_STORE_ENV} must be auto, keyring or file, not {choice!r}.")
    if keyring_available():
        return KeyringStore()
    log.debug("No usable OS keyring; sign-ins are kept in %s.", default_credentials_path())
    return FileStore()


def has_stored_login(authority: str, client_id: str | None = None, store: TokenStore | None = None) -> bool:
    """True when a sign-in is stored for this authority (and client id); never raises."""
    try:
        chosen = store if store is not None else default_store()
        return chosen.load(authority, client_id) is not None
    except (AuthError, ConfigError):
        return False


def _remembered_path() -> Path:
    return default_credentials_path().with_name("signin-index.json")


def forget_remembered_logins() -> None:
    """Drop what `remembered_login` keeps: called by every save and delete, in either store."""
    with contextlib.suppress(OSError):
        _remembered_path().unlink()


def remembered_login(authority: str, client_id: str | None, choice: str | None) -> bool:
    """`has_stored_login` for the chosen store, remembered between starts (no secret: only whether one exists).

    Asking the OS keyring costs about 90 ms of every server start (its backends are probed); the answer only changes
    when `login`/`logout` save or delete a sign-in, and both forget it. A sign-in removed by other means is noticed at
    the first call, which then says to run `itwin-insights-mcp login`.
    """
    key = f"{(choice or 'auto').strip().lower()}|{authority.rstrip('/')}|{client_id or ''}"
    path = _remembered_path()
    try:
        answers = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        answers = {}
    if not isinstance(answers, dict):
        answers = {}
    if isinstance(answers.get(key), bool):
        return bool(answers[key])
    found = has_stored_login(authority, client_id, default_store(choice))
    answers[key] = found
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(answers, out)
        os.replace(temporary, path)
    return found
