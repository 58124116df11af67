"""The network API's wire contract, shared by the server (``linkserver.net``) and the clients.

- :mod:`linkserver.wire.shapes`: every request, answer and WebSocket message as a
  msgspec ``Struct``: one declaration from which decoding (strict: no coercion, no
  unknown keys, no lone surrogates, no NaN) and the OpenAPI schemas both come;
- :mod:`linkserver.wire.routes`: the HTTP operations (method, path, shapes, statuses);
- :mod:`linkserver.wire.decode`: the one strict decoder and its error messages;
- :mod:`linkserver.wire.errors`: which error type is which HTTP status, both ways.

Imports only :mod:`linkserver.core` and msgspec, so the client stays free of server
dependencies.
"""
