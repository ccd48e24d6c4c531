<?php

namespace Checkout\Laravel\Events;

/**
 * A call failed the checkout: a business rule in advance (KC010-KC013:
 * `$status->errorCode`, `failedPhase`) or Checkout::fail (KC014).  Its
 * rollback is done; money to give back comes as CompensationRequired from
 * checkout:listen / checkout:dispatch-compensations.
 */
final class CheckoutFailed extends CheckoutEvent
{
}
