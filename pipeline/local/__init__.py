"""What only a local run needs: preflight checks, the run lock, the log, the ML Metadata store."""
