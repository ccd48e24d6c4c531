# checkout — PGXS build.  `make`, `make install`, `make installcheck` work as for
# any extension; `make test` and `make demo` run the self-contained harness.

EXTENSION    = checkout
MODULE_big   = checkout
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA         = $(wildcard sql/checkout--*.sql)
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Wall -Werror -Wmissing-prototypes

# pg_regress: inputs in sql/, outputs in expected/ (the extension script lives
# in sql/ too, so list the tests rather than globbing).
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/checkout--%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --outputdir=results --load-extension=checkout

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: test demo bench stress fuzz flash failover
test:
	bash test/run_tests.sh
demo:
	bash test/demo.sh
bench:
	bash test/bench/run_bench.sh
stress:
	bash test/stress.sh
fuzz:
	bash test/fuzz.sh
flash:
	bash test/bench/flash_sale.sh
failover:
	bash test/failover.sh
