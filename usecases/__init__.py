"""Use cases: one function per thing people do, shared by the command line and the web app."""
