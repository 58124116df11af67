"""The bridge tests: a package, so that test_contract.py may share its name with history's."""
