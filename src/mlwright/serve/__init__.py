"""The model server: app factory, generated request schemas, the deployment gate."""
