#!/usr/bin/env python3
"""moto's server with every request serialised: python3 scripts/moto_server.py HOST PORT

moto's own server answers on several threads, and its DynamoDB TransactWriteItems
copies the table without a lock, so two racing conditional transactions can both
succeed there, which real DynamoDB never allows. Our concurrency tests race exactly
such writes, so requests are handled one at a time (connections stay concurrent).
"""
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

# Newer moto releases ship their own request handler; older ones use werkzeug's.
REQUEST_HANDLER = getattr(werkzeug_app, "MotoRequestHandler", None)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Drain the body inside the lock: moto may compute it lazily.
            return list(app(environ, start_response))

    run_simple(host, port, serialised, threaded=True, request_handler=REQUEST_HANDLER)


if __name__ == "__main__":
    main()
