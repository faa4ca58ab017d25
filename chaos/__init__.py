"""`make chaos`: fault scenarios against a real launched stack, each told as launched / completed / failed / lost."""
