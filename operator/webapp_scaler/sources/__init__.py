"""Where session counts come from. One small interface (`base.SessionSource`), one module per source."""
