"""The HTTP functions' contract as an OpenAPI 3.1 document (docs/openapi.json), generated from the pydantic models
of every request (shared/models.py) and answer (answers.py) by `make openapi`; a test fails when it is stale."""
