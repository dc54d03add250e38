# A webhook receiver for the demo: prints each event, checks its signature, answers 500 to the first N requests.
# Usage: receiver.py PORT SECRET [N]
import hashlib, hmac, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
SECRET = sys.argv[2].encode()
FAIL_FIRST = int(sys.argv[3]) if len(sys.argv) > 3 else 0
seen = 0
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers['Content-Length']))
        seen += 1
        expected = 'sha256=' + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, self.headers['X-Leadrouter-Signature'])
        event = json.loads(body)
        c = event['data']['contact']
        code = 500 if seen <= FAIL_FIRST else 200
        print(f"#{seen} answered {code}: event {event['id']} {event['type']:24} contact {c['id']} operator {c['operator_id']} "
              f"queue_position {c['queue_position']} status {c['status']} reason {event['data']['change']['reason']} "
              f"signature {'valid' if ok else 'INVALID'}", flush=True)
        self.send_response(code); self.end_headers()
    def log_message(self, *args): pass
HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
