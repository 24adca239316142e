"""Task bodies, one module per DAG and named after it: the body of a task of ``dags/<id>.py`` is in
``tasks/<id>.py``, or in ``tasks/shared.py`` when several DAGs run the same step."""
