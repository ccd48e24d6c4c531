<?php

namespace Checkout\Laravel;

/** The phases of a checkout, in the order they run (enum checkout.phase). */
enum Phase: string
{
    case CartValidation = 'cart_validation';
    case InventoryReservation = 'inventory_reservation';
    case PriceLock = 'price_lock';
    case PaymentAuthorization = 'payment_authorization';
    case OrderCreation = 'order_creation';
    case PaymentCapture = 'payment_capture';
    case StockCommit = 'stock_commit';

    /** The phase after this one; null after stock_commit. */
    public function next(): ?self
    {
        $cases = self::cases();
        $at = array_search($this, $cases, true);

        return $cases[$at + 1] ?? null;
    }

    /** Runs only with ['reference' => ..., 'amount' => ...] (advance stops before it without one). */
    public function needsPayment(): bool
    {
        return $this === self::PaymentAuthorization || $this === self::PaymentCapture;
    }

    /** Position in the run order, from 1. */
    public function ordinal(): int
    {
        return array_search($this, self::cases(), true) + 1;
    }
}
