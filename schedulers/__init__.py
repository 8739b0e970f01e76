"""Decision making: a factory from scheduler names to Syne Tune schedulers."""
