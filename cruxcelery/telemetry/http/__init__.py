"""telemetry/http"""
