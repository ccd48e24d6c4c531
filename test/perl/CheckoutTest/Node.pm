# CheckoutTest::Node: a PostgreSQL::Test::Cluster set up the way every TAP test
# of the extension needs it, plus the queries they keep making.  The Makefile
# puts test/perl on prove's include path (make prove_installcheck).
#
#   my $node = CheckoutTest::Node->start_new('primary',
#       init     => { allows_streaming => 1 },              # passed to init()
#       settings => { 'checkout.cleanup_interval' => '5min' },
#       stock    => [ [ 'W-1', 100, 10 ] ]);                # sku, on_hand, unit_price
#
# start_new preloads the library (so the worker runs and sweeps "postgres",
# unless settings name other databases), starts the node and creates the
# extension in "postgres".  Nodes made with new() (a standby from a backup)
# have the helpers too.
package CheckoutTest::Node;

use strict;
use warnings;
use parent 'PostgreSQL::Test::Cluster';
use Time::HiRes qw(time usleep);

sub start_new
{
	my ($class, $name, %opt) = @_;
	my $node = $class->new($name);
	$node->init(%{ $opt{init} // {} });
	my %settings = (
		shared_preload_libraries => 'checkout',
		'checkout.database'      => 'postgres',
		%{ $opt{settings} // {} });
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = '$settings{$_}'\n" } sort keys %settings));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION checkout');
	$node->add_stock('postgres', @{ $opt{stock} }) if $opt{stock};
	return $node;
}

# add_stock(DB, [sku, on_hand, unit_price], ...)
sub add_stock
{
	my ($self, $db, @rows) = @_;
	my $values = join(', ',
		map { sprintf("('%s', %d, %d)", @$_) } @rows);
	$self->safe_psql($db,
		"INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES $values");
	return;
}

# The single value a query returns, in database "postgres" unless DB is given.
sub query_value
{
	my ($self, $sql, $db) = @_;
	return $self->safe_psql($db // 'postgres', $sql);
}

# The process id of the sweeper of DB ('' when none runs).
sub sweeper_pid
{
	my ($self, $db) = @_;
	return $self->query_value(
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = '"
		  . ($db // 'postgres') . "'");
}

# Wait until DB's sweeper runs; dies after the usual poll timeout.
sub wait_for_sweeper
{
	my ($self, $db) = @_;
	$db //= 'postgres';
	$self->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = '$db'")
	  or die "no sweeper for database $db";
	return;
}

# Whether lock LOCK reaches STATE in checkout.locks within SECONDS (polled
# every 100 ms, so the caller can assert how soon).
sub wait_for_state
{
	my ($self, $lock, $state, $seconds, $db) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1
		  if $self->query_value("SELECT state FROM checkout.locks WHERE lock_id = $lock", $db) eq $state;
		usleep(100_000);
	}
	return 0;
}

1;
