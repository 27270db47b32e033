"""The audit log: who changed money, prices or permissions, where and when."""
