import sys

if sys.argv[1:] == ["--version"]:  # answered before importing the command line (argparse, typing, ...)
    from engine import __version__

    sys.stdout.write(f"ctxbudget {__version__}\n")
    sys.exit(0)

from engine.cli import main  # noqa: E402

sys.exit(main())
