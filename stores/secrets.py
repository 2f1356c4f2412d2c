"""The development token secret: random, made once per warehouse directory, readable by its owner only.

Outside production, when ``ODDSFORGE_JWT_SECRET`` is not set, the API and ``oddsforge token`` both
sign with the secret in ``{warehouse}/jwt-secret`` (:data:`stores.layout.JWT_SECRET_FILE`). The first
of them to start creates it; an API and a CLI starting together must agree on one secret, so the file
is written whole under a temporary name (mode 0600 from its creation) and linked into place, which
fails if another process got there first: every process then reads the one that won.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from domain.errors import UserError

SECRET_BYTES = 48
"""Random bytes in a generated secret (64 URL-safe characters): above HS256's 32-byte minimum."""


class SecretFileError(UserError):
    """The secret file exists but must not be used (readable by others)."""


def dev_jwt_secret(path: Path) -> str:
    """The secret in ``path``, created first with a fresh random value if absent."""
    if not path.exists():
        _create(path, secrets.token_urlsafe(SECRET_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{path} is accessible to other users (mode {mode:04o}); run `chmod 600 {path}` "
            "or delete it to have a new secret generated"
        )
    return path.read_text().strip()


def _create(path: Path, secret: str) -> None:
    """Create ``path`` holding ``secret`` unless it exists: never a partial or second secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        os.link(tmp, path)  # fails if the target exists: an atomic create-if-absent
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        Path(tmp).unlink(missing_ok=True)
