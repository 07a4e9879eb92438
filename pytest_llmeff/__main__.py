"""``python -m pytest_llmeff`` = the ``llmeff`` command."""

from pytest_llmeff.cli import main

raise SystemExit(main())
