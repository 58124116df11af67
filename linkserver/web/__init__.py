"""The web console served by ``linkserver serve`` at ``/`` (docs/web.md).

The page is plain ES modules and CSS in ``static/`` (package data): the
browser talks to the same HTTP and WebSocket API as every other client.
"""
