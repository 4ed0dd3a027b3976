"""Session agent: counts a web application's active user sessions and exports them for the operator."""
