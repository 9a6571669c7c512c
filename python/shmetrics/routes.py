"""The specification's Flask blueprint: /metrics, /metrics/json and
/metrics/health served from the segment through the reader library.

    from shmetrics.routes import metrics_bp
    app.register_blueprint(metrics_bp)

For deployments that want no separate exporter process; shmetrics-exporter
stays the recommended path (gzip, shared renders, TLS, auth).  Each
request maps the segment read-only, sums it and renders it in C with the
GIL released; what this process registered in REGISTRY beyond the
segment (custom collectors, Info, Enum, target_info) follows, rendered
by prometheus_client's encoders, and set_function() gauges are written
first.
"""

from flask import Blueprint, Response, request

from . import _shmetrics, view
from ._pc import exposition as _pe, om_exposition as _om
from .registry import REGISTRY, segment_name

metrics_bp = Blueprint('metrics', __name__)

TEXT = _shmetrics.content_type('text')
OPENMETRICS = _shmetrics.content_type('openmetrics')
JSON = _shmetrics.content_type('json')


def _wants_openmetrics():
    accept = request.accept_mimetypes
    om = accept['application/openmetrics-text']
    return om > 0 and om >= accept['text/plain']


def _unavailable(err):
    # The exporter's document (lib/page.c), so that both answer alike.
    return Response(_shmetrics.unhealthy(str(err)), status=503,
                    content_type=JSON)


@metrics_bp.route('/metrics')
def metrics():
    fmt, ctype = ('openmetrics', OPENMETRICS) if _wants_openmetrics() \
        else ('text', TEXT)
    view.refresh_functions()
    try:
        body = _shmetrics.render(segment_name(), fmt)
    except OSError as err:
        return Response('segment unavailable: %s\n' % err, status=503,
                        mimetype='text/plain')
    extras = REGISTRY._extras()
    if extras is not None:
        if fmt == 'openmetrics':
            # One "# EOF", at the end: the extras' own.
            body = body[:-len(b'# EOF\n')] if body.endswith(b'# EOF\n') \
                else body
            body += _om.generate_latest(extras)
        else:
            body += _pe.generate_latest(extras)
    return Response(body, status=200, content_type=ctype)


@metrics_bp.route('/metrics/json')
def metrics_json():
    try:
        body = _shmetrics.render(segment_name(), 'json')
    except OSError as err:
        return _unavailable(err)
    return Response(body, status=200, mimetype=JSON)


@metrics_bp.route('/metrics/health')
def metrics_health():
    try:
        body = _shmetrics.render(segment_name(), 'health')
    except OSError as err:
        return _unavailable(err)
    return Response(body, status=200, mimetype=JSON)
