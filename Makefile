.PHONY: setup run test lint bench
setup:
	. scripts/venv.sh
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check app jobs wecom miniprogram_api tests config.py wsgi.py
bench:
	@ls bench/*.py | xargs -n1 .venv/bin/python
