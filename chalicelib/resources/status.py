"""Status shapes shared by kinds: conditions as the real platform writes them."""
from typing import Literal, Optional

from .meta import Model


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    severity: Optional[Literal["Error", "Warning", "Info"]] = None
    lastTransitionTime: Optional[str] = None
    reason: Optional[str] = None
    message: Optional[str] = None
