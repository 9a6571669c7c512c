"""The gunicorn prefork demo: a Flask app that counts its requests with
shmetrics and serves the segment with the specification's blueprint.

    SHMETRICS_SEGMENT=/demo gunicorn --workers 4 --preload gunicorn_app:app
"""

import os

from flask import Flask

from shmetrics import Counter, Histogram
from shmetrics.routes import metrics_bp

REQUESTS = Counter('demo_requests', 'Requests served', ['path'])
LATENCY = Histogram('demo_request_seconds', 'Request latency')

app = Flask(__name__)
app.register_blueprint(metrics_bp)


@app.route('/')
def index():
    with LATENCY.time():
        REQUESTS.labels('/').inc()
        return 'served by %d\n' % os.getpid()
