"""The test suite, one package per room (tests/<room>/), plus e2e/ for whole runs across rooms."""
