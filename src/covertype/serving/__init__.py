"""Serving the champion model: the request/response schema, the registry loader and the BentoML service."""
