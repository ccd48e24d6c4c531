# The C code is the one-way module chain docs/internals.md documents: its
# "Module chain" table puts each module (a src/NAME.c and/or src/NAME.h) on a
# tier, and a file may include the headers of lower tiers only, and its own.
# Also: only store.c (and direct.c itself) includes direct.h; no .c file
# declares a function extern (a prototype that would call past the chain);
# every file of src/ is in the table and every module of the table has a
# file; the drawing above the table names the modules in the table's order.
# Needs no server: `prove test/t/005_module_chain.pl`.
use strict;
use warnings;
use FindBin;
use Test::More;

my $root = "$FindBin::Bin/../..";
my $doc = "$root/docs/internals.md";

# ---- the documented chain ----
open my $fh, '<', $doc or die "$doc: $!";
my $text = do { local $/; <$fh> };
close $fh;
my ($section) = $text =~ /^## Module chain\n(.*?)(?=^## )/ms
  or BAIL_OUT("$doc has no \"## Module chain\" section");

my (%tier, @table_order);
for my $line (split /\n/, $section)
{
	next unless $line =~ /^\|\s*(\d+)\s*\|\s*([^|]*)\|/;
	my ($t, $cell) = ($1, $2);
	my @modules = $cell =~ /`(\w+)\.[ch]`/g;
	ok(@modules > 0, "table row of tier $t names a module") or diag($line);
	for my $m (@modules)
	{
		ok(!exists $tier{$m}, "module $m is in the table once");
		$tier{$m} = $t;
		push @table_order, $m;
	}
}
cmp_ok(scalar(@table_order), '>=', 10, 'the table lists the modules');

my ($drawing) = $section =~ /```\n(.*?)```/s;
ok(defined $drawing, 'the section has a drawing');
my @drawn = ($drawing // '') =~ /\b(\w+)\.[ch]\b/g;
is_deeply(\@drawn, \@table_order, 'the drawing names the modules in the order of the table');

# ---- the code ----
my @files = map { s{.*/}{}r } sort glob("$root/src/*.c $root/src/*.h");
my %module_of = map { $_ => s/\.[ch]$//r } @files;
my %headers = map { $_ => 1 } grep { /\.h$/ } @files;

is_deeply([ grep { !exists $tier{ $module_of{$_} } } @files ], [],
	'every file of src/ belongs to a module of the table');
my %has_file = map { $_ => 1 } values %module_of;
is_deeply([ grep { !$has_file{$_} } @table_order ], [], 'every module of the table has a file in src/');

my %contents;
for my $file (@files)
{
	open my $src, '<', "$root/src/$file" or die "src/$file: $!";
	$contents{$file} = do { local $/; <$src> };
	close $src;
}

# What in the files breaks the chain, one line per finding.
sub violations
{
	my ($contents) = @_;
	my @found;
	for my $file (sort keys %$contents)
	{
		my $from = $module_of{$file};
		my $n = 0;
		for my $line (split /\n/, $contents->{$file})
		{
			$n++;
			push @found, "src/$file:$n declares a function extern: $line"
			  if $file =~ /\.c$/ && $line =~ /^\s*extern\b/;
			next unless $line =~ /^\s*#\s*include\s+"([^"]+)"/;
			my $header = $1;
			next unless $headers{$header};    # a PostgreSQL header
			my $to = $module_of{$header};
			push @found, "src/$file:$n includes direct.h, which only store.c may"
			  if $header eq 'direct.h' && $from ne 'store' && $from ne 'direct';
			next if $to eq $from || !exists $tier{$from} || !exists $tier{$to};
			push @found, "src/$file:$n (tier $tier{$from}) includes $header (tier $tier{$to})"
			  if $tier{$to} >= $tier{$from};
		}
	}
	return @found;
}

my @found = violations(\%contents);
is_deeply(\@found, [], 'every include runs down the chain, direct.h only in store.c, no extern in a .c file')
  or diag(join "\n", @found);

# The check fails where it should: the tree with an include of a higher
# tier, one of its own tier, direct.h outside store.c and an extern added.
my %broken = %contents;
$broken{'util.c'} .= "#include \"worker.h\"\n";
$broken{'api.c'} .= "#include \"worker.h\"\n";
$broken{'stock.c'} .= "#include \"direct.h\"\n";
$broken{'phases.c'} .= "extern bool checkout_next_due(TimestampTz *next_due);\n";
my @caught = violations(\%broken);
is(scalar(grep { /^src\/util\.c:\d+ \(tier \d+\) includes worker\.h/ } @caught), 1,
	'an include of a higher tier is caught');
is(scalar(grep { /^src\/stock\.c:\d+ includes direct\.h/ } @caught), 1, 'direct.h outside store.c is caught');
is(scalar(grep { /^src\/phases\.c:\d+ declares a function extern/ } @caught), 1, 'an extern in a .c file is caught');
is(scalar(grep { /^src\/api\.c:\d+ \(tier (\d+)\) includes worker\.h \(tier \1\)/ } @caught), 1,
	'an include of the same tier is caught');
is(scalar(@caught), 4, 'nothing else is') or diag(join "\n", @caught);

done_testing();
