"""``python -m keyfob``: the same as the ``keyfob`` command."""

import sys

from keyfob._fast import main

sys.exit(main())
