"""(being restructured)"""
