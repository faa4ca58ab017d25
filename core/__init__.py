"""Framework-free building blocks shared by the app, the API and the workers."""
