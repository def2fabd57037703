"""Code that runs inside the server processes (and the checks beside them), never in the
supervisor: the app wrapper the servers load, the app check, the management-command entry."""
