"""Process plumbing of a flow: runner, supervision, graceful stop, recovery."""
