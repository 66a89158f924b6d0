"""Lambda event adapters beside the HTTP one (shared/http.py): the kinds of event and `dispatch` (kinds.py), SQS
batches (sqs.py) and EventBridge scheduled events (schedule.py)."""
