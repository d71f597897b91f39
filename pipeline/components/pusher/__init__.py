"""The Pusher's executor (executor.py): TFX's filesystem push, without duplicate pushes."""
