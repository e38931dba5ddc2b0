"""Fake integration that reports failure the way return_error() does: an error entry, then exit status 0."""

import sys

import demistomock as demisto


def main() -> None:
    demisto.setLastRun({"counter": 999})
    demisto.results({"Type": 4, "ContentsFormat": "text", "Contents": "Failed to execute command.\nError: bad key"})
    sys.exit(0)


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
