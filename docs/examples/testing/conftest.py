pytest_plugins = ["asyncjobs.pytest_plugin"]
