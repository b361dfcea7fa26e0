"""Pure decisions: names, cmdspec templates, job-file parsing, sync plans and more.

Nothing here talks to Kubernetes, git or HTTP: functions take values and return
values, so every decision is tested without a cluster.
"""
