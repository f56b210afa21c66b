"""``python -m genreflow``: the same as the ``genreflow`` command."""

from genreflow.cli import main

raise SystemExit(main())
