"""``python -m fastdhcp``: the same as the ``fastdhcp`` command."""

import sys

from fastdhcp.cli import main

sys.exit(main())
