"""The run layer: processes, sockets, signals, health, reloads. Depends on plan, never on cli."""
