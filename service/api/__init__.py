"""The HTTP API's parts: request/response models, errors, auth, routes. ``service.app`` wires them."""
