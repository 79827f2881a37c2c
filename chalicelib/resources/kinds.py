"""What the generic API machinery needs to know about a kind; one `Kind` per resource module."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Type

from pydantic import BaseModel

from .. import config


@dataclass(frozen=True)
class Column:
    """A Table column (meta.k8s.io/v1 TableColumnDefinition) and how to read it off an object."""

    name: str
    type: str
    description: str
    get: Callable[[dict], object]
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    model: Type[BaseModel]
    namespaced: bool = True
    short_names: Tuple[str, ...] = ()
    categories: Tuple[str, ...] = ()
    columns: Tuple[Column, ...] = ()
    # Finalizers the server adds on create: the object stays until the worker removes them.
    finalizers: Tuple[str, ...] = ()
    # Domain hook run on every create/update before the write: defaults and cross-field rules.
    # Called as admit(new_obj, old_obj_or_None, principal); raises errors.ApiError to refuse.
    admit: Optional[Callable] = None
    # Whether a change from old to new needs the worker (create, spec change, delete).
    enqueue_on: Callable[[Optional[dict], dict], bool] = field(default=lambda old, new: False)
    # Which verbs the kind serves (kubectl reads them from discovery).
    verbs: Tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    # POST-only subresources: name -> handler(principal, obj, body) returning the response object.
    subresources: Dict[str, Callable] = field(default_factory=dict)
    # Who may do what: a policy name of chalicelib.authz (project, admin-writes, members-read, self).
    policy: str = "admin-writes"
    # (user, team) owning an object, for "only their own" rules.
    owner_of: Callable[[dict], Tuple[Optional[str], Optional[str]]] = field(
        default=lambda obj: (((obj.get("spec") or {}).get("owner") or {}).get("user"),
                             ((obj.get("spec") or {}).get("owner") or {}).get("team")))
    # Paths (tuples of keys) returned by the write that set them but never stored (e.g. a new key).
    write_only: Tuple[Tuple[str, ...], ...] = ()
    # Called with the object after every successful write (caches to drop).
    on_written: Optional[Callable[[dict], None]] = None

    @property
    def api_version(self):
        return f"{config.GROUP}/{config.VERSION}"

    @property
    def resource(self):
        """`plural.group`, as kube-apiserver names a resource in its messages."""
        return f"{self.plural}.{config.GROUP}"


REGISTRY: List[Kind] = []


def register(kind):
    REGISTRY.append(kind)
    return kind


def by_plural(plural):
    for kind in REGISTRY:
        if plural in (kind.plural,):
            return kind
    return None
