"""One booking through the kiosk's own API, as the officer's screen drives it (boot-check.sh).

    python3 booking.py PORT BOOKING_NUMBER OFFICER PIN

Signs in as OFFICER (the kiosk's sign-in: a session cookie and its CSRF token), then prints
the number of prints taken and the booking's delivery state; exit 1 when the booking
is not in the station's list afterwards.
"""

import http.cookiejar
import json
import sys
import urllib.error
import urllib.request

port, number, officer, pin = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
csrf = ""


def call(method, path, body=None):
    """One JSON request to the kiosk API, in the officer's session."""
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Origin": f"http://127.0.0.1:{port}",
                                          "X-CSRF-Token": csrf})
    with opener.open(req, timeout=600) as res:
        return json.loads(res.read())


csrf = call("POST", "/api/kiosk/signin", {"officer": officer, "pin": pin})["csrf"]
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
