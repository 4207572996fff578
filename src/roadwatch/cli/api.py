from typing import Annotated

import typer
import uvicorn

from roadwatch.bootstrap import api_app
from roadwatch.cli.common import fail
from roadwatch.cli.common import settings as load_settings
from roadwatch.errors import ConfigurationError

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]


def api(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Serve the Detections API (and the dashboard) with uvicorn."""
    settings = load_settings()
    try:
        app = api_app(settings)
    except ConfigurationError as error:
        raise fail(error) from None
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        # A client's address is the peer's, unless the peer is a proxy named as trusted.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        timeout_graceful_shutdown=5,
    )
