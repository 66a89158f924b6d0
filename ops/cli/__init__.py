"""The operators' command line: backfill, reconcile, the conflicts and the link suggestions, against the
configured databases.

    python -m ops.cli backfill [--limit N] [--dry-run] [--cursor C]
    python -m ops.cli reconcile [--full] [--dry-run] [--limit N] [--cursor C]
    python -m ops.cli conflicts [--all] [--limit N]
    python -m ops.cli links
    python -m ops.cli link CLIENT_ID PROJECT_B_USER_ID
    python -m ops.cli reject-link CLIENT_ID PROJECT_B_USER_ID

Settings come from the environment, as the functions get them, and choose the backend as theirs do (shared.wiring):
PROJECT_A_DB_URL and PROJECT_B_DB_URL, the client_sync connection strings, or each project's PROJECT_X_URL and
PROJECT_X_SERVICE_ROLE_KEY (PROJECT_X_BACKEND may choose; shared/config.py). Backfill and reconcile page through
shared.backfill and shared.reconcile until they have nothing left, with a progress bar on stderr (rows, rows/s, time
elapsed and left, the cursor) and a summary table on stdout. Ctrl-C stops after the current page and prints the
command that resumes from there (exit 130); a second Ctrl-C stops at once. Exit codes: 0 done, 1 an error (one line
on stderr), 2 a usage error, 130 interrupted.

main.py reads the arguments and runs a command (commands.py); paging.py pages with progress.py's bar and
summary; links.py lists, links and rejects link suggestions; output.py sets up the consoles and the log lines;
errors.py turns an error into its one line.

rich is imported only in ops/cli, and only when a command runs: the functions never import ops/, and their
package (requirements.txt) does not have it.
"""

PROG = "python -m ops.cli"
OK, ERROR, USAGE, INTERRUPTED = 0, 1, 2, 130
