"""Validates JSON files against the scenario schema with python3-jsonschema.
Usage: schema_check.py SCHEMA FILE...; prints 'valid FILE' or 'invalid FILE: reason' per file."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(validator.iter_errors(json.load(open(path))), key=lambda e: list(e.path))
    if errors:
        print(f"invalid {path}: {errors[0].message}")
    else:
        print(f"valid {path}")
