#!/usr/bin/python3
"""A local Alertmanager webhook receiver: prints one line per alert it
receives and, with --log FILE, appends each notification as a JSON line.

usage: alert-receiver.py [--listen HOST:PORT] [--log FILE]
(default 127.0.0.1:9095, the url of tools/prometheus/alertmanager.yml)
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:9095")
    ap.add_argument("--log")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length",
                                                        0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            try:
                msg = json.loads(body)
            except ValueError:
                return
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps(msg) + "\n")
            for a in msg.get("alerts", []):
                print("alertmanager: %s %s %s" % (
                    a.get("status"), a["labels"].get("alertname"),
                    a.get("annotations", {}).get("summary", "")),
                    flush=True)

        def log_message(self, *a):
            pass

    try:
        HTTPServer((host, int(port)), Handler).serve_forever()
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print("alert-receiver: %s: %s" % (args.listen, e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
