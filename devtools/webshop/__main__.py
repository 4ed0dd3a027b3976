"""Allow `python -m webshop` as well as the `webshop` console script."""

from webshop import cli

if __name__ == "__main__":
    raise SystemExit(cli.main())
