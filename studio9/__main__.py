"""``python -m studio9`` is the ``studio9`` command."""

from studio9.cli import main

raise SystemExit(main())
