/*
 * spi_util.c — the SPI layer: every statement is prepared once per backend,
 * kept (SPI_keepplan) and executed with parameters.  Callers hold the plan
 * pointer in a static next to the SQL text, so a reader sees each statement
 * where it is used.  Kept plans survive DROP/CREATE EXTENSION: the plan cache
 * re-analyses them when the tables they name are invalidated.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "checkout.h"

SPIPlanPtr
checkout_plan(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (plan == NULL)
			elog(ERROR, "checkout: SPI_prepare failed (%s) for: %s",
				 SPI_result_code_string(SPI_result), sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "checkout: SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/* Runs a cached plan; returns SPI_processed.  Errors are raised by SPI. */
int
checkout_exec(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *argtypes,
			  Datum *values, const char *nulls, bool read_only, long count)
{
	SPIPlanPtr	plan = checkout_plan(cache, sql, nargs, argtypes);
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "checkout: SPI_execute_plan failed (%s) for: %s",
			 SPI_result_code_string(rc), sql);
	return (int) SPI_processed;
}

char *
checkout_text_cell(SPITupleTable *tt, int row, int col)
{
	return SPI_getvalue(tt->vals[row], tt->tupdesc, col);
}

int64
checkout_int8_cell(SPITupleTable *tt, int row, int col, bool *isnull)
{
	bool		null;
	Datum		d = SPI_getbinval(tt->vals[row], tt->tupdesc, col, &null);

	if (isnull)
		*isnull = null;
	return null ? 0 : DatumGetInt64(d);
}

bool
checkout_bool_cell(SPITupleTable *tt, int row, int col)
{
	bool		null;
	Datum		d = SPI_getbinval(tt->vals[row], tt->tupdesc, col, &null);

	return !null && DatumGetBool(d);
}

Datum
checkout_int8_array(const int64 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
