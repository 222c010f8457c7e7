"""One booking through the kiosk's own API, as the officer's screen drives it (boot-check.sh).

    python3 booking.py PORT BOOKING_NUMBER

Prints the number of prints taken and the booking's delivery state; exit 1 when the booking
is not in the station's list afterwards.
"""

import json
import sys
import urllib.error
import urllib.request

port, number = int(sys.argv[1]), sys.argv[2]


def call(method, path, body=None):
    """One JSON request to the kiosk API."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Origin": f"http://127.0.0.1:{port}"})
    with urllib.request.urlopen(req, timeout=600) as res:
        return json.loads(res.read())


call("POST", "/api/booking", {"booking_number": number})
prints = 0
while call("GET", "/api/kiosk")["current"] is not None:
    call("POST", "/api/capture")
    prints += 1
    try:
        call("POST", "/api/accept", {})
    except urllib.error.HTTPError:
        call("POST", "/api/accept", {"override_reason": "boot check"})
try:
    call("POST", "/api/submit", {})
except urllib.error.HTTPError:  # the sequence check asks the officer to confirm
    call("POST", "/api/submit", {"confirm_sequence": True})
states = {b["booking_number"]: b["state"] for b in call("GET", "/api/kiosk")["bookings"]}
print(f"booking {number}: {prints} prints, state {states.get(number)}")
sys.exit(0 if number in states else 1)
