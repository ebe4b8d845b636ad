"""The ``ctxbudget`` command line (under construction)."""
def main(argv=None) -> int:  # replaced by the CLI framework in the next commit
    return 0
