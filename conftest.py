"""Root pytest configuration: hypothesis profiles (owned by the reference suite)."""
