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
}
