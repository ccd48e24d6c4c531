<?php

// Run by 05_listener.php as a separate process while checkout:listen waits:
// checkouts that NOTIFY (and some NOTIFYs that must not dispatch), as
// another client would.  Prints the lock ids by scenario as JSON.
//   php notify_producer.php DATABASE APP_ROLE ADMIN_ROLE

[, $database, $appRole, $adminRole] = $argv;
$dsn = sprintf('pgsql:host=%s;port=%d;dbname=%s', getenv('PGHOST'), (int) getenv('PGPORT'), $database);
$options = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION];
$app = new PDO($dsn, $appRole, null, $options);
$admin = new PDO($dsn, $adminRole, null, $options);
$value = function (PDO $pdo, string $sql, array $params = []) {
    $statement = $pdo->prepare($sql);
    $statement->execute($params);

    return $statement->fetchColumn();
};
$line = json_encode([['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]]);
$pay = fn (string $reference) => json_encode(['reference' => $reference, 'amount' => 1000]);
$start = fn (string $cart, string $ttl = '10 minutes') => (int) $value($app,
    'SELECT lock_id FROM checkout_start(?, ?, ?::jsonb, ?::interval)', [$cart, 'producer', $line, $ttl]);
$advance = fn (int $lock, ?string $payload, string $until) => $value($app,
    'SELECT state FROM checkout_advance(?, ?, coalesce(?::jsonb, \'{}\'), ?::checkout.phase)', [$lock, 'producer', $payload, $until]);
$locks = [];

usleep(500_000);   // checkout:listen is listening by now

// must not dispatch: a rolled-back checkout, junk, another channel, forged compensations
$app->beginTransaction();
$rolledBack = $start('rolled-back');
$advance($rolledBack, $pay('auth-rb'), 'payment_authorization');
$value($app, 'SELECT state FROM checkout_fail(?, ?, ?)', [$rolledBack, 'producer', 'x']);
$app->rollBack();
$value($app, "SELECT pg_notify('checkout_events', 'not json')");
$value($app, "SELECT pg_notify('some_other_channel', '{\"event\":\"completed\",\"lock_id\":1}')");

// captured, then cancelled: refund_required
$locks['refund'] = $start('refund');
$advance($locks['refund'], $pay('auth-r'), 'order_creation');
$advance($locks['refund'], $pay('cap-r'), 'payment_capture');
$value($app, 'SELECT state FROM checkout_cancel(?, ?)', [$locks['refund'], 'producer']);
$refund = (int) $value($admin, 'SELECT compensation_id FROM checkout.compensations WHERE lock_id = ?', [$locks['refund']]);
$value($app, "SELECT pg_notify('checkout_events', ?)", [json_encode(['event' => 'refund_required', 'lock_id' => $locks['refund'], 'compensation_id' => 999999])]);
$value($app, "SELECT pg_notify('checkout_events', ?)", [json_encode(['event' => 'void_required', 'lock_id' => $locks['refund'], 'compensation_id' => $refund])]);

// a compensation resolved before its NOTIFY is read: not dispatched
$locks['resolved'] = $start('resolved');
$advance($locks['resolved'], $pay('auth-x'), 'payment_authorization');
$app->beginTransaction();
$value($app, 'SELECT state FROM checkout_cancel(?, ?)', [$locks['resolved'], 'producer']);
$value($app, 'UPDATE checkout.compensations SET resolved_at = now() WHERE lock_id = ? RETURNING 1', [$locks['resolved']]);
$app->commit();

// completed
$locks['completed'] = $start('completed');
$advance($locks['completed'], $pay('auth-c'), 'payment_authorization');
$advance($locks['completed'], $pay('cap-c'), 'stock_commit');

// a business failure (unknown sku)
$locks['failed'] = (int) $value($app, 'SELECT lock_id FROM checkout_start(?, ?, ?::jsonb)',
    ['unknown', 'producer', json_encode([['line_id' => '1', 'sku' => 'NOPE', 'quantity' => 1, 'unit_price' => 1]])]);
$advance($locks['failed'], null, 'price_lock');

// authorised, then the card is declined: void_required and failed
$locks['declined'] = $start('declined');
$advance($locks['declined'], $pay('auth-d'), 'payment_authorization');
$value($app, 'SELECT state FROM checkout_fail(?, ?, ?)', [$locks['declined'], 'producer', 'card declined']);

// authorised and abandoned, expired by the cleanup: void_required and expired
$locks['expired'] = $start('abandoned', '1 second');
$advance($locks['expired'], $pay('auth-e'), 'payment_authorization');
usleep(1_100_000);
$value($admin, 'SELECT checkout_cleanup_expired()');

echo json_encode($locks), "\n";
