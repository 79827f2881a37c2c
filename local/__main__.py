"""`make run`: the whole product on this machine (moto as AWS, HTTPS as API Gateway, in-process worker)."""
import os
import signal
import sys
import threading

from .stack import Stack


def main():
    stack = Stack(state_dir=os.environ.get("STATE_DIR", ".local"), port=int(os.environ.get("PORT", "8443")))
    stack.start()
    print(stack.banner(), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    stack.stop()
    print("stopped; state kept in", stack.state_dir, file=sys.stderr)


if __name__ == "__main__":
    main()
