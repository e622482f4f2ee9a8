"""telemetry/spool"""
