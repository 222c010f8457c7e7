"""``python -m appliance.cli``: the same as the ``booking-station`` command."""

import sys

from appliance.cli import main

sys.exit(main())
