"""Fake integration that returns its command arguments, plus a readable entry, and prints a stray line."""

import demistomock as demisto


def main() -> None:
    print("stray print from the integration")
    arguments = demisto.args()
    demisto.results({"Type": 1, "ContentsFormat": "json", "Contents": arguments})
    demisto.results({"Type": 1, "ContentsFormat": "json", "Contents": {"ignored": True}, "HumanReadable": "## Args"})
    demisto.results(f"command {demisto.command()} from {demisto.callingContext['context']['IntegrationBrand']}")


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
