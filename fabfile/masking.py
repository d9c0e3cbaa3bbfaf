"""Keep secret values out of everything we print: logs, diffs, validator messages, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"
# web.yml's basic-auth hash: not the password, but a copy to guess it offline from; never printed either
BCRYPT_HASH = re.compile(r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}")
BCRYPT_MASK = "<bcrypt hash>"


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: list[str] = []
        self.extend(secrets)

    def extend(self, secrets: Iterable[str]) -> None:
        """Mask these too (certificates made during the run): the printers holding this masker follow."""
        # longest first, so a secret that contains another is masked whole
        self._values = sorted({*self._values, *(s for s in secrets if s and len(s) >= 3)}, key=len,
                              reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return BCRYPT_HASH.sub(BCRYPT_MASK, text)
