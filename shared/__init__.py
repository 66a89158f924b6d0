"""Code shared by the functions: models, configuration, auth, the sync service and its stores."""
