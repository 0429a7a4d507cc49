"""The OpenAPI description of the gateway (openapi.yaml), package data served by gateway.api.docs."""
