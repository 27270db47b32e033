# make run: the whole demo on this machine. make test: the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint format bench translations clean

$(BIN)/pasok: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/pasok

install: $(BIN)/pasok

run: install
	$(BIN)/pasok demo

test: install
	$(BIN)/pytest -W error $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/storefront.py

# Re-extract every string, merge it into the catalogues, and compile them (commit the result).
translations: install
	$(BIN)/pybabel extract -F babel.cfg --no-location -o app/translations/messages.pot .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching --ignore-pot-creation-date
	$(BIN)/pybabel compile -d app/translations --statistics

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
