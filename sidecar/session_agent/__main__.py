"""Allow `python -m session_agent` as well as the `session-agent` console script."""

from session_agent import cli

if __name__ == "__main__":
    raise SystemExit(cli.main())
