"""What the API accepts and answers: its own models, apart from the CRD models.

Routes never return a resource's raw dict; each builds one of these (``from_*``
functions), so the API's contract changes only when these do.
"""
