"""Where the active-session count comes from: one module per source, all behind `base.SessionSource`."""
