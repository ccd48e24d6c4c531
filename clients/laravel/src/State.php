<?php

namespace Checkout\Laravel;

/** The state of a checkout lock (enum checkout.lock_state). */
enum State: string
{
    case Active = 'active';
    case Completed = 'completed';
    case Failed = 'failed';
    case Expired = 'expired';
    case Cancelled = 'cancelled';
}
