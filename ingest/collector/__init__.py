"""The collector process: `POST /events`, validated, located and handed to a sink."""
