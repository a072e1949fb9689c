"""The web console: server-rendered pages for reviewers, providers, auditors,
administrators and operators, served by the gateway under ``/console``.

Pages call the same service functions as the REST routers (no HTTP calls to
the gateway itself, no rule of their own); ``pages`` holds what they share
(sessions, roles per page, rendering, headers), ``messages`` every string in
Chinese and English. The stylesheet is the console's own: no CDN, no external
fonts, no script.
"""

from gateway.console.pages import is_console, no_route, static_files
from gateway.console.router import router

__all__ = ["is_console", "no_route", "router", "static_files"]
