"""A class's predictions, live: each attempt in a student's Stepper becomes an event (events.py),
stored once in the class's SQLite database (store.py) from the student's kernel (link.py) or by
the JupyterHub service (service.py), and summed up for the teacher's view (summary.py)."""
