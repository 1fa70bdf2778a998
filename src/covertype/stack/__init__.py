"""Running the project's services as native processes: used by `make stack`, the demo and the tests."""
