"""Browser views of the team workspace, one module per page family."""
