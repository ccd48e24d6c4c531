/*
 * cart.c — parsing and validating the lines of checkout_start (22023 on any
 * malformed line) and the payload objects of checkout_advance (KC020).
 *
 * A cart may hold up to checkout.max_lines lines; duplicate line ids and the
 * per-sku quantity sums are found by sorting, so a hostile cart costs
 * O(n log n), and every loop over lines can be cancelled.
 */
#include "postgres.h"

#include "common/int.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "cart.h"
#include "errors.h"
#include "settings.h"
#include "util.h"

#define LINE_HINT \
	"Each line is {\"line_id\": text, \"sku\": text, \"quantity\": integer >= 1, \"unit_price\": integer >= 0}."

/*
 * An integral JSON number that fits bigint; 2.0 counts, 2.5 and 1e30 do not.
 */
static bool
json_value_int64(const JsonbValue *v, int64 *out)
{
	Datum num;
	Datum truncated;

	if (v == NULL || v->type != jbvNumeric)
		return false;
	num = NumericGetDatum(v->val.numeric);
	truncated = DirectFunctionCall2(numeric_trunc, num, Int32GetDatum(0));
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, truncated)))
		return false;
	/* range check first: numeric_int8 would raise 22003 rather than 22023 */
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, num,
										 NumericGetDatum(int64_to_numeric(
											 PG_INT64_MIN)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt, num,
										 NumericGetDatum(
											 int64_to_numeric(PG_INT64_MAX)))))
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, num));
	return true;
}

/*
 * A non-empty JSON string of at most CHECKOUT_MAX_IDENTIFIER bytes, or NULL.
 */
static char *
json_identifier(const JsonbValue *v, const char *what)
{
	if (v == NULL || v->type != jbvString || v->val.string.len == 0)
		return NULL;
	check_identifier(what, v->val.string.len);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static JsonbValue *
json_object_key(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

static void
reject_line(int line_no, const char *line_id, const char *problem)
{
	if (line_id)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid cart line %d (line_id %s): %s",
							   line_no, quote_user_text(line_id), problem),
						errhint(LINE_HINT)));
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid cart line %d: %s", line_no, problem),
					errhint(LINE_HINT)));
}

/* Sorting line numbers by a string column, to find duplicates and groups. */
static char **sort_keys;

static int
cmp_by_key(const void *a, const void *b)
{
	int ia = *(const int *) a;
	int ib = *(const int *) b;
	int c = strcmp(sort_keys[ia], sort_keys[ib]);

	/* ties by position, so the reported duplicate is the later line */
	return c != 0 ? c : (ia > ib) - (ia < ib);
}

static int *
order_by(char **keys, int n)
{
	int *order = palloc(sizeof(int) * n);
	int	 i;

	for (i = 0; i < n; i++)
		order[i] = i;
	sort_keys = keys;
	qsort(order, n, sizeof(int), cmp_by_key);
	return order;
}

static void
parse_line(JsonbContainer *root, int i, CartLines *out)
{
	JsonbValue		buf;
	JsonbValue	   *elem = getIthJsonbValueFromContainer(root, i);
	JsonbContainer *obj;
	char		   *line_id;
	int64			product;

	if (elem == NULL || elem->type != jbvBinary ||
		!JsonContainerIsObject(elem->val.binary.data))
		reject_line(i + 1, NULL, "not a JSON object");
	obj = elem->val.binary.data;

	line_id = json_identifier(json_object_key(obj, "line_id", &buf),
							  "line_id");
	if (line_id == NULL)
		reject_line(i + 1, NULL, "\"line_id\" must be a non-empty string");
	out->line_ids[i] = line_id;

	out->skus[i] = json_identifier(json_object_key(obj, "sku", &buf), "sku");
	if (out->skus[i] == NULL)
		reject_line(i + 1, line_id, "\"sku\" must be a non-empty string");

	if (!json_value_int64(json_object_key(obj, "quantity", &buf),
						  &out->quantities[i]))
		reject_line(i + 1, line_id,
					"\"quantity\" must be an integer within bigint range");
	if (out->quantities[i] < 1)
		reject_line(i + 1, line_id, "\"quantity\" must be at least 1");

	if (!json_value_int64(json_object_key(obj, "unit_price", &buf),
						  &out->prices[i]))
		reject_line(i + 1, line_id,
					"\"unit_price\" must be an integer within bigint range");
	if (out->prices[i] < 0)
		reject_line(i + 1, line_id, "\"unit_price\" must not be negative");

	if (pg_mul_s64_overflow(out->prices[i], out->quantities[i], &product) ||
		pg_add_s64_overflow(out->total, product, &out->total))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("cart total is out of range for type bigint"),
				 errdetail("Line %d (line_id %s) makes the total overflow.",
						   i + 1, quote_user_text(line_id))));
}

void
parse_cart_lines(Jsonb *lines, CartLines *out)
{
	JsonbContainer *root = &lines->root;
	int				n;
	int				i;
	int			   *order;

	if (!JsonContainerIsArray(root) || JsonContainerIsScalar(root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart lines must be a JSON array"),
				 errhint(
					 "Pass [{\"line_id\": \"1\", \"sku\": \"A-1\", \"quantity\": 2, \"unit_price\": 1000}, ...].")));
	n = JsonContainerSize(root);
	if (n == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cart has no lines")));
	if (n > checkout_max_lines)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart has %d lines, more than checkout.max_lines (%d)",
						n, checkout_max_lines)));

	out->n = n;
	out->line_ids = palloc(sizeof(char *) * n);
	out->skus = palloc(sizeof(char *) * n);
	out->quantities = palloc(sizeof(int64) * n);
	out->prices = palloc(sizeof(int64) * n);
	out->total = 0;

	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		parse_line(root, i, out);
	}

	order = order_by(out->line_ids, n);
	for (i = 1; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (strcmp(out->line_ids[order[i - 1]], out->line_ids[order[i]]) == 0)
			reject_line(order[i] + 1, out->line_ids[order[i]],
						"duplicate line_id");
	}

	/* quantities are summed per sku at reservation: that sum must fit too */
	order = order_by(out->skus, n);
	for (i = 0; i < n;)
	{
		int64 sum = 0;
		int	  j;

		for (j = i;
			 j < n && strcmp(out->skus[order[i]], out->skus[order[j]]) == 0;
			 j++)
		{
			CHECK_FOR_INTERRUPTS();
			if (pg_add_s64_overflow(sum, out->quantities[order[j]], &sum))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("total quantity of sku %s is out of range for type bigint",
								quote_user_text(out->skus[order[i]]))));
		}
		i = j;
	}
}

/* ---- checkout_advance payloads ---- */

static PaymentPayload *
parse_payment(JsonbContainer *obj)
{
	JsonbValue		rbuf, abuf, mbuf;
	JsonbValue	   *reference = json_object_key(obj, "reference", &rbuf);
	JsonbValue	   *amount = json_object_key(obj, "amount", &abuf);
	JsonbValue	   *metadata = json_object_key(obj, "metadata", &mbuf);
	PaymentPayload *payment;

	if (reference == NULL && amount == NULL)
	{
		if (metadata != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
					 errmsg("payment metadata without a payment"),
					 errhint(
						 "Pass {\"reference\": text, \"amount\": bigint, \"metadata\": {...}}.")));
		return NULL;
	}
	payment = palloc0(sizeof(PaymentPayload));
	payment->reference = json_identifier(reference, "payment reference");
	if (payment->reference == NULL ||
		!json_value_int64(amount, &payment->amount) || payment->amount < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
				 errmsg("malformed payment payload"),
				 errhint(
					 "Pass {\"reference\": non-empty text, \"amount\": integer >= 0}.")));
	if (metadata != NULL)
	{
		if (metadata->type != jbvBinary ||
			!JsonContainerIsObject(metadata->val.binary.data))
			ereport(ERROR, (errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
							errmsg("payment metadata must be a JSON object")));
		payment->metadata = JsonbToCString(NULL, metadata->val.binary.data,
										   metadata->val.binary.len);
		if (strlen(payment->metadata) > CHECKOUT_MAX_METADATA)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("payment metadata is too large (%zu bytes, the maximum is %d)",
							strlen(payment->metadata),
							CHECKOUT_MAX_METADATA)));
	}
	return payment;
}

void
parse_advance_payload(Jsonb *payload, AdvancePayload *out)
{
	JsonbValue	buf;
	JsonbValue *order_ref;

	memset(out, 0, sizeof(*out));
	if (!JsonContainerIsObject(&payload->root) ||
		JsonContainerIsScalar(&payload->root))
		ereport(ERROR, (errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
						errmsg("payload must be a JSON object")));
	out->payment = parse_payment(&payload->root);
	order_ref = json_object_key(&payload->root, "order_ref", &buf);
	if (order_ref)
	{
		out->order_ref = json_identifier(order_ref, "order_ref");
		if (out->order_ref == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
					 errmsg("malformed order payload"),
					 errhint(
						 "Pass {\"order_ref\": non-empty text}, or no order_ref.")));
		/* generated references are CO-<lock_id>: nobody may take one ahead */
		if (strncmp(out->order_ref, "CO-", 3) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
					 errmsg("order_ref %s starts with \"CO-\", which is reserved for generated references",
							quote_user_text(out->order_ref)),
					 errhint(
						 "Use another prefix for the application's own order references.")));
	}
}
