"""Pure decisions: names, cmdspec templates, job-definition parsing.

Nothing here talks to Kubernetes, git or HTTP; functions take values and return values.
"""
