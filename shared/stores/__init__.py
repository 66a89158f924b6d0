"""The stores: Project A and Project B over Postgres (postgres.py, its pools in pools.py), and the SQS queue
(retry_queue.py)."""
