"""One router per resource; ``serving.main`` includes each (add a module here and one line there)."""
