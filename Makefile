# checkout — PGXS build.  `make`, `make install` and, against a running server,
# `make installcheck` (pg_regress, isolation and TAP) and `make prove_installcheck`
# work as for any extension; `make pgtap_installcheck` runs the pgTAP suite.
# `make test` runs every suite on a throwaway cluster (test/run_tests.sh); the
# test lists below are the only ones, it drives these same targets.

EXTENSION    = checkout
MODULE_big   = checkout
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA         = $(wildcard sql/checkout--*.sql)
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Wall -Werror -Wmissing-prototypes

# pg_regress: sql/<test>.sql against expected/<test>.out (the extension
# scripts live in sql/ too, hence the filter).  Each test includes
# test/fixtures/checkout_test.sql, so any order works.
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/checkout--%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=checkout

# Isolation: test/isolation/specs/<test>.spec against test/isolation/expected/.
# The specs call the fixture's functions, and pg_isolation_regress cannot run a
# psql script, so isolation_db makes the database (as pg_regress would) with
# the extension and the fixture, and --use-existing keeps it.
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --use-existing
REGRESS_PREP   = $(if $(ISOLATION),isolation_db)

# TAP (prove): each test starts its own clusters; test/perl holds CheckoutTest::Node.
TAP_TESTS    = 1
# (?=: `PROVE_TESTS=test/t/090_docs_snippets.pl make test` runs one file)
PROVE_TESTS ?= $(sort $(wildcard test/t/*.pl))

# pgTAP (pg_prove), in database PGTAP_TESTDB with pgtap and checkout; the
# contract file of the shared design, when it sits beside the repository,
# runs in addition (never required).  It was written against 0.2.0's status
# row of ten fields, to which the design appends three from 0.3.0: the copy
# that runs (results/contract_surface.sql) expects those three after the
# ten, and is otherwise the file as it is.
PGTAP_TESTS  = $(sort $(wildcard test/pgtap/*.sql))
PGTAP_TESTDB = checkout_tap
CONTRACT     = ../shared/contract/surface.sql
CONTRACT_RUN = $(if $(wildcard $(CONTRACT)),results/contract_surface.sql)
STATUS_0_2_0 = error_code text, error_message text'
STATUS_0_3_0 = error_code text, error_message text, created boolean, phases_run checkout.phase[], ended boolean'
PG_PROVE     = pg_prove

# PHP: the Laravel package's TAP scripts (clients/laravel), run by prove with
# php against the server of PGHOST/PGPORT as superuser PGUSER; each file makes
# and drops a database of its own (not one checkout.database names).
PHP_TESTS    = $(sort $(wildcard clients/laravel/tests/*.php))

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# a header change rebuilds every object (the Statement and LockRow layouts are shared)
$(OBJS): $(wildcard src/*.h)

PG_PROVE_FLAGS += -I $(srcdir)/test/perl
PSQL = '$(bindir)/psql' -X -q -v ON_ERROR_STOP=1

.PHONY: isolation_db prove_installcheck pgtap_installcheck php_installcheck test demo bench bench-long bench-instructions stress stress-striped fuzz flash failover indent indent-check

# the settings pg_regress gives the databases it creates
isolation_db:
	$(PSQL) -d postgres -c 'SET client_min_messages = warning' \
		-c 'DROP DATABASE IF EXISTS "$(ISOLATION_TESTDB)"' \
		-c 'CREATE DATABASE "$(ISOLATION_TESTDB)" TEMPLATE template0'
	$(PSQL) -d '$(ISOLATION_TESTDB)' \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET lc_messages TO 'C'" \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET lc_monetary TO 'C'" \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET lc_numeric TO 'C'" \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET lc_time TO 'C'" \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET bytea_output TO 'hex'" \
		-c "ALTER DATABASE \"$(ISOLATION_TESTDB)\" SET timezone_abbreviations TO 'Default'" \
		-c 'CREATE EXTENSION checkout' -f test/fixtures/checkout_test.sql

# PGXS defines the recipe but no target for it
prove_installcheck:
	$(prove_installcheck)

pgtap_installcheck:
	@echo "+++ pgTAP install-check +++"
	@echo $(if $(CONTRACT_RUN),"with contract $(CONTRACT) (run as $(CONTRACT_RUN): the status row's three 0.3.0 fields follow its ten)",\
		"without contract $(CONTRACT) (optional; not found)")
	$(PSQL) -d postgres -c 'SET client_min_messages = warning' \
		-c 'DROP DATABASE IF EXISTS "$(PGTAP_TESTDB)"' -c 'CREATE DATABASE "$(PGTAP_TESTDB)"'
	$(PSQL) -d '$(PGTAP_TESTDB)' -c 'SET client_min_messages = warning' \
		-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION checkout'
	$(if $(CONTRACT_RUN),mkdir -p results && \
		sed "s/$(STATUS_0_2_0)/$(STATUS_0_3_0)/" $(CONTRACT) > $(CONTRACT_RUN))
	$(PG_PROVE) --psql-bin '$(bindir)/psql' -d '$(PGTAP_TESTDB)' $(PROVE_FLAGS) \
		$(PGTAP_TESTS) $(CONTRACT_RUN)

php_installcheck:
	prove --exec php $(PROVE_FLAGS) $(PHP_TESTS)

test:
	bash test/run_tests.sh
demo:
	bash test/demo.sh
bench:
	bash test/bench/run_bench.sh
bench-long:
	BENCH_LONG=1 bash test/bench/run_bench.sh
bench-instructions:
	bash test/bench/instructions.sh
stress:
	bash test/stress.sh
stress-striped:
	bash test/stress_striped.sh
fuzz:
	bash test/fuzz.sh
flash:
	bash test/bench/flash_sale.sh
failover:
	bash test/failover.sh
# PostgreSQL's layout for src/ (clang-format-14 with .clang-format; installed
# when missing): indent formats in place, indent-check fails where it would
# change a file (test/t/006_indent.pl checks the same in make test)
indent:
	bash test/indent.sh
indent-check:
	bash test/indent.sh --check
