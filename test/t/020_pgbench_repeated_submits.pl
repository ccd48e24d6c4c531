# Repeated and concurrent submits of the same payment (a webhook and the
# browser, retries) must record each capture once, commit stock once, and
# never raise.  8 clients hammer 40 locks with captures and stock commits;
# then the ledger, orders and compensations are checked exactly.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use CheckoutTest::Node;

my $locks = 40;
my $stock = 1000;
my $node = CheckoutTest::Node->start_new('repeated_submits',
	stock => [ [ 'P-1', $stock, 100 ], [ 'P-2', $stock, 50 ] ]);
$node->safe_psql('postgres', qq{
	SELECT checkout_advance(s.lock_id, 'sess-' || g,
	                        ('{"reference":"auth-' || g || '","amount":250}')::jsonb,
	                        until => 'order_creation')
	FROM generate_series(1, $locks) g,
	     LATERAL checkout_start('cart-' || g, 'sess-' || g,
	         '[{"line_id":"1","sku":"P-1","quantity":2,"unit_price":100},
	           {"line_id":"2","sku":"P-2","quantity":1,"unit_price":50}]') s;
});
is($node->query_value(
	"SELECT count(*) FROM checkout.locks WHERE state = 'active' AND phase = 'order_creation'"),
	$locks, 'all locks are authorised and have their order');

# Half the calls stop at the capture (the webhook), half go on to the stock
# commit (the browser); both carry the same capture.
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=150',
	0,
	[ qr{processed: 1200/1200}, qr{number of failed transactions: 0} ],
	[ qr{^$} ],
	'concurrent repeated captures raise nothing',
	{
		'capture_webhook' => qq{
\\set id random(1, $locks)
SELECT state FROM checkout_advance(:id, 'sess-' || :id,
  ('{"reference":"cap-' || :id || '","amount":250}')::jsonb, until => 'payment_capture');
},
		'capture_browser' => qq{
\\set id random(1, $locks)
SELECT state FROM checkout_advance(:id, 'sess-' || :id,
  ('{"reference":"cap-' || :id || '","amount":250}')::jsonb, until => 'stock_commit');
}
	});

# Whatever the interleaving, one more browser call per lock finishes the rest.
$node->safe_psql('postgres', qq{
	SELECT checkout_advance(g, 'sess-' || g, '{"reference":"cap-x","amount":250}', until => 'stock_commit')
	FROM generate_series(1, $locks) g;
});

is($node->query_value(
	"SELECT count(*) FROM checkout.locks WHERE state = 'completed' AND capture_reference = 'cap-' || lock_id AND capture_amount = 250"),
	$locks, 'every lock completed with the capture it was first given');
is($node->query_value("SELECT string_agg(sku || ':' || on_hand || ':' || reserved, ',' ORDER BY sku) FROM checkout.inventory"),
	'P-1:' . ($stock - 2 * $locks) . ':0,P-2:' . ($stock - $locks) . ':0',
	'stock committed exactly once per lock');
is($node->query_value("SELECT count(*) FROM checkout.orders WHERE status = 'created'"),
	$locks, 'one order per lock');
is($node->query_value("SELECT count(*) FROM checkout.compensations"),
	0, 'no refund or void was needed');
is($node->query_value("SELECT count(*) FROM checkout.reservations"),
	0, 'no reservation is left behind');

$node->stop;
done_testing();
