"""The reference flows: ``writer`` (plan -> approval -> write) and ``digest`` (child flows,
wait_until)."""
