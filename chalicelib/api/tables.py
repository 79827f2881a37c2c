"""Server-side printing: the meta.k8s.io/v1 Table kubectl asks for by default."""
from datetime import datetime, timezone


def human_age(timestamp, now=None):
    """kube's duration.HumanDuration, so AGE reads like any other kubectl column."""
    if not timestamp:
        return "<unknown>"
    now = now or datetime.now(timezone.utc)
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    seconds = int((now - created).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if years < 8 and days % 365 else f"{years}y"


def _columns(kind):
    name = {"name": "Name", "type": "string", "format": "name", "priority": 0,
            "description": "Name must be unique within a namespace."}
    extra = [{"name": c.name, "type": c.type, "format": "", "description": c.description, "priority": c.priority}
             for c in kind.columns]
    age = {"name": "Age", "type": "date", "format": "", "priority": 0,
           "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}
    return [name] + extra + [age]


def _row(kind, obj, include_object):
    meta = obj["metadata"]
    cells = [meta["name"]] + [column.get(obj) for column in kind.columns] + [human_age(meta.get("creationTimestamp"))]
    if include_object == "Object":
        row_object = obj
    elif include_object == "None":
        row_object = None
    else:
        row_object = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    return {"cells": cells, "object": row_object}


def table(kind, objects, list_meta=None, include_object="Metadata"):
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": _columns(kind),
        "rows": [_row(kind, obj, include_object) for obj in objects],
    }
