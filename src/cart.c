/*
 * cart.c — reading the JSON the application passes in: the cart's lines at
 * checkout_start (all checks before anything is written; 22023 on any
 * malformed line) and the small payload objects of the payment and order
 * phases.  Nothing here touches tables.
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "checkout.h"

/* An integral JSON number that fits bigint; 2.0 counts, 2.5 and 1e30 do not. */
bool
json_value_int64(const JsonbValue *v, int64 *out)
{
	Datum		num;
	Datum		truncated;

	if (v == NULL || v->type != jbvNumeric)
		return false;
	num = NumericGetDatum(v->val.numeric);
	truncated = DirectFunctionCall2(numeric_trunc, num, Int32GetDatum(0));
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, truncated)))
		return false;
	/* range check first: numeric_int8 would raise 22003 rather than 22023 */
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, num, NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt, num, NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))))
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, num));
	return true;
}

/* A non-empty JSON string as a C string, or NULL. */
char *
json_value_text(const JsonbValue *v)
{
	if (v == NULL || v->type != jbvString || v->val.string.len == 0)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

JsonbValue *
json_object_key(JsonbContainer *obj, const char *key)
{
	JsonbValue *res = palloc(sizeof(JsonbValue));

	if (getKeyJsonValueFromContainer(obj, key, strlen(key), res) == NULL)
	{
		pfree(res);
		return NULL;
	}
	return res;
}

static void
reject_line(int line_no, const char *line_id, const char *problem)
{
	if (line_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cart line %d (line_id \"%s\"): %s", line_no, line_id, problem),
				 errhint("Each line is {\"line_id\": text, \"sku\": text, \"quantity\": integer >= 1, \"unit_price\": integer >= 0}.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid cart line %d: %s", line_no, problem),
			 errhint("Each line is {\"line_id\": text, \"sku\": text, \"quantity\": integer >= 1, \"unit_price\": integer >= 0}.")));
}

void
parse_cart_lines(Jsonb *lines, CartLines *out)
{
	JsonbContainer *root = &lines->root;
	int			n;
	int			i;

	if (!JsonContainerIsArray(root) || JsonContainerIsScalar(root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart lines must be a JSON array"),
				 errhint("Pass [{\"line_id\": \"1\", \"sku\": \"A-1\", \"quantity\": 2, \"unit_price\": 1000}, ...].")));
	n = JsonContainerSize(root);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart has no lines")));

	out->n = n;
	out->line_ids = palloc(sizeof(char *) * n);
	out->skus = palloc(sizeof(char *) * n);
	out->quantities = palloc(sizeof(int64) * n);
	out->prices = palloc(sizeof(int64) * n);
	out->total = 0;

	for (i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(root, i);
		JsonbContainer *obj;
		char	   *line_id;
		int64		product;
		int			j;

		if (elem == NULL || elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
			reject_line(i + 1, NULL, "not a JSON object");
		obj = elem->val.binary.data;

		line_id = json_value_text(json_object_key(obj, "line_id"));
		if (line_id == NULL)
			reject_line(i + 1, NULL, "\"line_id\" must be a non-empty string");
		for (j = 0; j < i; j++)
			if (strcmp(out->line_ids[j], line_id) == 0)
				reject_line(i + 1, line_id, "duplicate line_id");
		out->line_ids[i] = line_id;

		out->skus[i] = json_value_text(json_object_key(obj, "sku"));
		if (out->skus[i] == NULL)
			reject_line(i + 1, line_id, "\"sku\" must be a non-empty string");

		if (!json_value_int64(json_object_key(obj, "quantity"), &out->quantities[i]))
			reject_line(i + 1, line_id, "\"quantity\" must be an integer within bigint range");
		if (out->quantities[i] < 1)
			reject_line(i + 1, line_id, "\"quantity\" must be at least 1");

		if (!json_value_int64(json_object_key(obj, "unit_price"), &out->prices[i]))
			reject_line(i + 1, line_id, "\"unit_price\" must be an integer within bigint range");
		if (out->prices[i] < 0)
			reject_line(i + 1, line_id, "\"unit_price\" must not be negative");

		if (pg_mul_s64_overflow(out->prices[i], out->quantities[i], &product) ||
			pg_add_s64_overflow(out->total, product, &out->total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("cart total is out of range for type bigint"),
					 errdetail("Line %d (line_id \"%s\") makes the total overflow.", i + 1, line_id)));
	}

	/* Quantities are summed per sku at reservation; that sum must fit too. */
	for (i = 0; i < n; i++)
	{
		int64		sum = 0;
		int			j;

		for (j = 0; j < n; j++)
			if (strcmp(out->skus[i], out->skus[j]) == 0 &&
				pg_add_s64_overflow(sum, out->quantities[j], &sum))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("total quantity of sku \"%s\" is out of range for type bigint",
								out->skus[i])));
	}
}
