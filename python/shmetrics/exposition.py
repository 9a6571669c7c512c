"""generate_latest, the WSGI and ASGI apps and the HTTP server, as
prometheus_client's, serving shmetrics registries (default: REGISTRY).

They are prometheus_client's own encoders and handlers (_pc.py) given a
shmetrics registry, whose collect() yields prometheus_client's Metric
objects: the pages are byte for byte what prometheus_client serves for
the same values.  They render in Python, as prometheus_client does; the
C renders (shmetrics-exporter, the Flask blueprint shmetrics.routes,
_shmetrics.render) stay the fast way to serve a large segment.
"""

from ._pc import asgi as _asgi, exposition as _pe, om_exposition as _om
from .registry import REGISTRY

CONTENT_TYPE_LATEST = _pe.CONTENT_TYPE_LATEST


def generate_latest(registry=REGISTRY):
    """The registry in the text format 0.0.4, as prometheus_client."""
    return _pe.generate_latest(registry)


def choose_encoder(accept_header):
    """(encoder, content type) for an Accept header: OpenMetrics when
    asked for, else the text format."""
    accept_header = accept_header or ''
    for accepted in accept_header.split(','):
        if accepted.split(';')[0].strip() == 'application/openmetrics-text':
            return _om.generate_latest, _om.CONTENT_TYPE_LATEST
    return generate_latest, CONTENT_TYPE_LATEST


def make_wsgi_app(registry=REGISTRY, disable_compression=False):
    """A WSGI app serving the registry (gzip, ?name[]=, OpenMetrics)."""
    return _pe.make_wsgi_app(registry, disable_compression)


def make_asgi_app(registry=REGISTRY, disable_compression=False):
    """An ASGI app serving the registry."""
    return _asgi.make_asgi_app(registry, disable_compression)


def start_wsgi_server(port, addr='0.0.0.0', registry=REGISTRY):
    """Serve the registry over HTTP from a daemon thread."""
    return _pe.start_wsgi_server(port, addr, registry)


start_http_server = start_wsgi_server


def write_to_textfile(path, registry):
    """The registry in the text format, written atomically to path."""
    return _pe.write_to_textfile(path, registry)


class MetricsHandler(_pe.MetricsHandler):
    """prometheus_client's http.server handler, on REGISTRY."""
    registry = REGISTRY
