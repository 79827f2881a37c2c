"""boto3 clients, one per service per process, made lazily (boto3 stays off the import path).

Clients are thread-safe, sessions are not, so each is made under a lock; one client per request
thread cost ~50 ms per request on the local server, which runs a thread per request."""
import threading

_lock = threading.Lock()
_clients = {}


def client(service):
    made = _clients.get(service)
    if made is None:
        with _lock:
            made = _clients.get(service)
            if made is None:
                import boto3

                made = _clients[service] = boto3.session.Session().client(service)
    return made
