"""A provider's `server` option as a URL: the one place that adds https:// and joins the path."""

from __future__ import annotations


def _parts(server: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path as written without its leading slash); https unless the option names one."""
    if "://" not in server:
        server = "https://" + server
    scheme, rest = server.split("://", 1)
    host, _, path = rest.partition("/")
    return scheme, host, path


def base_url(server: str, default_path: str = "") -> str:
    """The base that API paths are appended to: the path the option names (no slash at either end), else
    ``default_path``."""
    scheme, host, path = _parts(server)
    return f"{scheme}://{host}/{path.strip('/')}" if path.strip("/") else f"{scheme}://{host}{default_path}"


def endpoint(server: str, default_path: str) -> str:
    """The URL requests go to as they are: the path the option names, as written, else ``default_path``."""
    scheme, host, path = _parts(server)
    return f"{scheme}://{host}/{path}" if path.strip("/") else f"{scheme}://{host}{default_path}"
