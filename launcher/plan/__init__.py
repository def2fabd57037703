"""The pure layer: YAML profile -> validated Profile -> LaunchPlan. No processes, no sockets."""
