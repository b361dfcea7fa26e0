"""One router per resource; ``overseer_api.app.create_app`` includes them all."""
