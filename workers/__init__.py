"""Worker processes: poll the task queues and run workflows and activities."""
