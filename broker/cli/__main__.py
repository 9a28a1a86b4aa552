"""``python -m broker.cli``: the same as the ``brook`` console script."""

import sys

from broker.cli.main import main

sys.exit(main())
