"""One script per page; app.py puts them in the navigation, tests run each on its own."""
