/*
 * cart.h — reading the JSON the application passes in: the cart's lines at
 * checkout_start and the payload of checkout_advance.  Nothing here touches
 * tables; everything is checked before anything is written.
 */
#ifndef CHECKOUT_CART_H
#define CHECKOUT_CART_H

#include "utils/jsonb.h"

typedef struct CartLines
{
	int	   n;
	char **line_ids;
	char **skus;
	int64 *quantities;
	int64 *prices;
	int64  total; /* sum of price * quantity as the cart says */
} CartLines;

typedef struct PaymentPayload
{
	char *reference;
	int64 amount;
	char *metadata; /* JSON object text, or NULL */
} PaymentPayload;

typedef struct AdvancePayload
{
	PaymentPayload *payment;   /* NULL when absent */
	char		   *order_ref; /* the application's own order, or NULL */
} AdvancePayload;

extern void parse_cart_lines(Jsonb *lines, CartLines *out);
extern void parse_advance_payload(Jsonb *payload, AdvancePayload *out);

#endif /* CHECKOUT_CART_H */
