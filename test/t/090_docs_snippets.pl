# The documentation's SQL runs (docs/testing.md, "The documentation's SQL
# runs").  Every ```sql block of README.md, docs/*.md and monitoring/README.md
# is run with psql (ON_ERROR_STOP) on a node that preloads the library, each in
# a database of its own with the extension, unless HTML comments right before
# the block say otherwise:
#   <!-- snippet setup: SQL -->     hidden SQL run first
#   <!-- snippet check: SQL -->     hidden query run after; must return true
#   <!-- snippet: continues -->     the database of the file's previous snippet
#   <!-- snippet: no extension -->  a database without the extension
#   <!-- snippet params: v1, ... --> values for $1, ...: PREPARE and EXECUTE
#   <!-- runs in: PATH -->          not run: PATH must exist and contain each
#                                   of the snippet's statements
# Any other comment right before a block, or a snippet comment before no SQL
# block, is an error.  Every relative link of those files must lead to a file
# that exists, and a #fragment to a heading there.  Controls first: the
# parser, the runner, the runs-in check and the link check each catch the
# defect they exist for.
use strict;
use warnings;
use Cwd qw(abs_path getcwd);
use File::Basename qw(dirname);
use FindBin;
use List::Util qw(max);
use PostgreSQL::Test::Utils;
use Test::More;
use CheckoutTest::Node;

my $root = abs_path("$FindBin::Bin/../..");
# a snippet's setup may \i a file of the repository by its path from the root
chdir $root or die "chdir $root: $!" if abs_path(getcwd()) ne $root;

my @documents = ('README.md', sort(glob('docs/*.md')), 'monitoring/README.md');

sub slurp
{
	my ($path) = @_;
	open my $fh, '<:encoding(UTF-8)', $path or die "$path: $!";
	local $/;
	return <$fh>;
}

# Split SQL into statements, outside quotes, dollar quotes and comments.  Each
# statement: its text, its text without comments and with whitespace
# collapsed (norm), and the highest $n parameter it uses (params).
sub split_sql
{
	my ($sql) = @_;
	my @statements;
	my ($text, $norm, $params) = ('', '', 0);
	my $finish = sub {
		(my $n = $norm) =~ s/\s+/ /g;
		$n =~ s/^ | $//g;
		push @statements, { text => $text, norm => $n, params => $params } if $n ne '';
		($text, $norm, $params) = ('', '', 0);
	};
	pos($sql) = 0;
	while (pos($sql) < length $sql)
	{
		if ($sql =~ /\G(--[^\n]*|\/\*.*?\*\/)/gcs)
		{
			$text .= $1;
			$norm .= ' ';
		}
		elsif ($sql =~ /\G('(?:[^']|'')*'|"(?:[^"]|"")*")/gc
			|| $sql =~ /\G((\$[A-Za-z_][A-Za-z_0-9]*\$|\$\$).*?\2)/gcs)
		{
			$text .= $1;
			$norm .= $1;
		}
		elsif ($sql =~ /\G\$(\d+)/gc)
		{
			$params = max($params, $1);
			$text .= "\$$1";
			$norm .= "\$$1";
		}
		elsif ($sql =~ /\G;/gc)
		{
			$finish->();
		}
		else
		{
			$sql =~ /\G(.)/gcs;
			$text .= $1;
			$norm .= $1;
		}
	}
	$finish->();
	return @statements;
}


# GitHub's anchor for a heading
sub slug
{
	my ($heading) = @_;
	$heading = lc $heading;
	$heading =~ s/[^\w\- ]//g;
	$heading =~ s/ /-/g;
	return $heading;
}

# Parse one markdown text: its SQL snippets (with their directives), the
# anchors of its headings and its links.  Dies on a directive it does not know.
sub parse_markdown
{
	my ($file, $text) = @_;
	my (@snippets, %anchors, @links, @pending);
	my @lines = split /\n/, $text, -1;
	my $i = 0;
	while ($i < @lines)
	{
		my $line = $lines[$i];
		my $lineno = $i + 1;
		if ($line =~ /^(\s*)```\s*(\S*)\s*$/)
		{
			my ($indent, $lang) = ($1, $2);
			my @body;
			$i++;
			while ($i < @lines && $lines[$i] !~ /^\s*```\s*$/)
			{
				(my $l = $lines[$i]) =~ s/^\Q$indent\E//;
				push @body, $l;
				$i++;
			}
			die "$file:$lineno: unterminated code block\n" if $i >= @lines;
			$i++;
			if ($lang eq 'sql')
			{
				my %snippet = (file => $file, line => $lineno, sql => join("\n", @body) . "\n",
					setup => [], check => [], params => undef);
				for my $d (@pending)
				{
					my ($c, $at) = @$d;
					if ($c =~ /^snippet setup:\s*(.*)$/s) { push @{ $snippet{setup} }, $1; }
					elsif ($c =~ /^snippet check:\s*(.*)$/s) { push @{ $snippet{check} }, $1; }
					elsif ($c =~ /^snippet:\s*continues$/) { $snippet{continues} = 1; }
					elsif ($c =~ /^snippet:\s*no extension$/) { $snippet{no_extension} = 1; }
					elsif ($c =~ /^snippet params:\s*(.+)$/s)
					{
						my $list = $1;
						$snippet{params} = [ $list =~ /\G\s*('(?:[^']|'')*'|[^,'\s]+)\s*(?:,|$)/gc ];
						die "$file:$at: cannot read the params \"$list\"\n"
						  if (pos($list) // 0) != length $list;
					}
					elsif ($c =~ /^runs in:\s*(\S+)$/) { $snippet{runs_in} = $1; }
					else { die "$file:$at: unknown comment before an SQL block: <!-- $c -->\n"; }
				}
				push @snippets, \%snippet;
			}
			elsif (@pending)
			{
				die "$file:$pending[0][1]: a snippet comment before a $lang block, not an SQL one\n";
			}
			@pending = ();
			next;
		}
		if ($line =~ /^(\s*)<!--(.*)$/)
		{
			my ($indent, $content) = ($1, $2);
			while ($content !~ /-->/ && ++$i < @lines)
			{
				(my $l = $lines[$i]) =~ s/^\Q$indent\E//;
				$content .= "\n$l";
			}
			die "$file:$lineno: unterminated comment\n" unless $content =~ s/-->\s*$//;
			$content =~ s/^\s+|\s+$//g;
			push @pending, [ $content, $lineno ];
			$i++;
			next;
		}
		if ($line =~ /\S/)
		{
			die "$file:$pending[0][1]: a snippet comment before no SQL block\n"
			  if grep { $_->[0] =~ /^(?:snippet|runs in)\b/ } @pending;
			@pending = ();
		}
		$anchors{ slug($1) } = 1 if $line =~ /^#+\s+(.*?)\s*$/;
		(my $prose = $line) =~ s/`[^`]*`//g;
		push @links, [ $1, $lineno ] while $prose =~ /\]\(([^)\s]+)\)/g;
		$i++;
	}
	die "$file: a snippet comment at the end, before no SQL block\n"
	  if grep { $_->[0] =~ /^(?:snippet|runs in)\b/ } @pending;
	return { snippets => \@snippets, anchors => \%anchors, links => \@links };
}

# The links of FILE (parsed) that lead nowhere: a missing file, or a fragment
# naming no heading of a markdown file.
sub broken_links
{
	my ($file, $parsed, $anchors_of) = @_;
	my @broken;
	for my $link (@{ $parsed->{links} })
	{
		my ($target, $lineno) = @$link;
		next if $target =~ /^[a-z]+:/;
		my ($path, $fragment) = $target =~ /^([^#]*)(?:#(.*))?$/;
		my $resolved = $path eq '' ? $file : dirname($file) . "/$path";
		$resolved =~ s{(^|/)\./}{$1}g;
		1 while $resolved =~ s{[^/]+/\.\./}{};
		if (!-e $resolved)
		{
			push @broken, "$file:$lineno: $target: no file $resolved";
			next;
		}
		next unless defined $fragment && $resolved =~ /\.md$/;
		my $anchors = $anchors_of->($resolved);
		push @broken, "$file:$lineno: $target: no heading #$fragment in $resolved"
		  unless $anchors->{$fragment};
	}
	return @broken;
}

# Whether each statement of SQL is in FILE; returns the problems.
sub runs_in_problems
{
	my ($sql, $file) = @_;
	return ("no file $file") unless -f $file;
	# whitespace collapsed only: a test file may be a spec, whose # comments
	# are no SQL
	(my $haystack = slurp($file)) =~ s/\s+/ /g;
	return map { "statement not in $file: $_->{norm}" }
	  grep { index($haystack, $_->{norm}) < 0 } split_sql($sql);
}

# The snippet as psql runs it: a statement with $n parameters becomes
# PREPARE, EXECUTE (with the first n values) and DEALLOCATE.
sub with_params
{
	my ($snippet) = @_;
	my $params = $snippet->{params} or return $snippet->{sql};
	my $sql = '';
	for my $s (split_sql($snippet->{sql}))
	{
		if ($s->{params} == 0)
		{
			$sql .= "$s->{text};\n";
			next;
		}
		die "$snippet->{file}:$snippet->{line}: \$$s->{params} but " . scalar(@$params) . " params\n"
		  if $s->{params} > @$params;
		$sql .= "PREPARE docs_snippet AS $s->{text};\n"
		  . 'EXECUTE docs_snippet(' . join(', ', @$params[ 0 .. $s->{params} - 1 ]) . ");\n"
		  . "DEALLOCATE docs_snippet;\n";
	}
	return $sql;
}

my $node = CheckoutTest::Node->start_new('docs');
my $databases = 0;
my %last_db;

# Run one snippet; returns the problems ('' when it ran and its checks hold).
sub run_snippet
{
	my ($snippet) = @_;
	my $where = "$snippet->{file}:$snippet->{line}";
	my $db;
	if ($snippet->{continues})
	{
		$db = $last_db{ $snippet->{file} } or return "$where: continues, but no snippet before it";
	}
	else
	{
		$db = 'docs_snippet_' . ++$databases;
		$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
		$node->safe_psql($db, 'CREATE EXTENSION checkout') unless $snippet->{no_extension};
	}
	$last_db{ $snippet->{file} } = $db;
	for my $setup (@{ $snippet->{setup} })
	{
		my ($rc, $out, $err) = $node->psql($db, $setup);
		return "$where: its setup failed: $err" if $rc != 0;
	}
	my $sql = eval { with_params($snippet) } // return $@;
	my ($rc, $out, $err) = $node->psql($db, $sql);
	return "$where failed (psql exit $rc):\n$err\n--- the SQL run:\n$sql" if $rc != 0;
	for my $check (@{ $snippet->{check} })
	{
		($rc, $out, $err) = $node->psql($db, $check);
		return "$where: its check does not hold (got '$out' $err):\n$check" if $rc != 0 || $out ne 't';
	}
	return '';
}

# --- controls: each check catches what it is for
like(eval { parse_markdown('control.md', "<!-- snipet setup: SELECT 1 -->\n```sql\nSELECT 1;\n```\n"); '' } // $@,
	qr/unknown comment before an SQL block/, 'control: a misspelt snippet comment is refused');
like(eval { parse_markdown('control.md', "<!-- snippet: continues -->\n\nSome prose.\n\n```sql\nSELECT 1;\n```\n"); '' } // $@,
	qr/before no SQL block/, 'control: a snippet comment that reaches no SQL block is refused');
my $control = parse_markdown('control.md', <<'MD');
Text [a link](docs/user-guide.md#settings) and [`code`](no-such-file.md), [x](README.md#no-such-heading).

  <!-- snippet setup:
  CREATE TABLE t (x int);
  -->
  <!-- snippet params: 1, 'a, b' -->
  ```sql
  SELECT x FROM t WHERE x = $1 AND 'a; b' <> $2; -- a comment; with a semicolon
  SELECT $$ $1; $$;
  ```
MD
is(scalar @{ $control->{snippets} }, 1, 'control: an indented block is found');
is_deeply($control->{snippets}[0]{setup}, ['CREATE TABLE t (x int);'], 'control: its setup, indentation removed');
is_deeply($control->{snippets}[0]{params}, [ '1', q{'a, b'} ], 'control: its params, a quoted comma kept');
is_deeply([ map { $_->{params} } split_sql($control->{snippets}[0]{sql}) ], [ 2, 0 ],
	'control: two statements; quotes, dollar quotes and comments do not split them');
my %anchors_cache;
my $anchors_of = sub { $anchors_cache{ $_[0] } //= parse_markdown($_[0], slurp($_[0]))->{anchors} };
is_deeply([ map { /: (\S+):/ } broken_links('control.md', $control, $anchors_of) ],
	['no-such-file.md', 'README.md#no-such-heading'],
	'control: a missing file and a missing heading are broken links, a good link is not');
is_deeply([ runs_in_problems("SELECT checkout_cleanup_expired() AS expired;\n", 'sql/verify_broken_invariants.sql') ], [],
	'control: a statement a test holds is found there (whitespace aside)');
is(scalar(runs_in_problems("SELECT 'not in that test';\n", 'sql/verify_broken_invariants.sql')), 1,
	'control: a statement a test does not hold is reported');
like((runs_in_problems("SELECT 1;\n", 'sql/no_such_test.sql'))[0], qr/no file/, 'control: a missing test file is reported');
like(run_snippet({ file => 'control.md', line => 1, sql => "SELECT * FROM checkout_status(1, 'nobody');\n",
	setup => [], check => [] }), qr/failed/, 'control: a snippet that raises fails');
like(run_snippet({ file => 'control.md', line => 2, sql => "SELECT 1;\n", setup => [], check => ['SELECT false'] }),
	qr/check does not hold/, 'control: a check that returns false fails');
is(run_snippet({ file => 'control.md', line => 3, sql => "CREATE TABLE t (x int);\nINSERT INTO t VALUES (7);\n",
	setup => [], check => [] }), '', 'control: a good snippet runs');
is(run_snippet({ file => 'control.md', line => 4, continues => 1, sql => "SELECT x FROM t WHERE x = \$1;\n",
	params => ['7'], setup => [], check => ['SELECT count(*) = 1 FROM t'] }), '', 'control: a continuation sees its table; params bind');

# --- the documents
my $total = 0;
for my $file (@documents)
{
	ok(-f $file, "$file exists") or next;
	my $parsed = eval { parse_markdown($file, slurp($file)) };
	if (!$parsed)
	{
		fail("$file parses");
		diag($@);
		next;
	}
	# every ```sql fence, counted without the parser, is a snippet it found
	my $fences = () = slurp($file) =~ /^[ \t]*```sql[ \t]*$/mg;
	is(scalar @{ $parsed->{snippets} }, $fences, "$file: its $fences SQL blocks are all found");
	my @broken = broken_links($file, $parsed, $anchors_of);
	is(scalar @broken, 0, "$file: every relative link leads somewhere") or diag(join("\n", @broken));
	for my $snippet (@{ $parsed->{snippets} })
	{
		$total++;
		my $where = "$file:$snippet->{line}";
		if ($snippet->{runs_in})
		{
			my @problems = runs_in_problems($snippet->{sql}, $snippet->{runs_in});
			is(scalar @problems, 0, "$where is run by $snippet->{runs_in}") or diag(join("\n", @problems));
			next;
		}
		my $problem = run_snippet($snippet);
		is($problem, '', "$where runs") or diag($problem);
	}
}
cmp_ok($total, '>=', 15, "the documents hold SQL snippets ($total)");

$node->stop;
done_testing();
