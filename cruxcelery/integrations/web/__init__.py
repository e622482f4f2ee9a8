"""integrations/web"""
