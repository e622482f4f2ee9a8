"""integrations/llm"""
