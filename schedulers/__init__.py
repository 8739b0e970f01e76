"""Decision making: a registry from scheduler names to builders over Syne Tune (``schedulers.registry``)."""
