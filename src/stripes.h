/*
 * stripes.h — striped stock: how a sku is striped, rebalanced and restocked
 * (stripes.c).
 */
#ifndef CHECKOUT_STRIPES_H
#define CHECKOUT_STRIPES_H

extern int checkout_rebalance_all(int *striped);

#endif /* CHECKOUT_STRIPES_H */
