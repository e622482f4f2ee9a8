"""The flow store: one RedisFlowStore (flow_store) composed of parts, one per concern, over one key
layout (keys) and its Lua scripts (scripts)."""
