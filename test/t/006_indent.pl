# src/*.c and src/*.h are as `make indent` leaves them: clang-format-14 with
# the repository's .clang-format (PostgreSQL's layout, docs/internals.md)
# changes none of them.  A file it would change fails, with the difference.
# Needs no server: `prove test/t/006_indent.pl`.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use Test::More;

my $root = "$FindBin::Bin/../..";
my $clang_format = $ENV{CLANG_FORMAT} // 'clang-format-14';
my $version = `$clang_format --version 2>/dev/null` // '';
ok($version =~ /clang-format version 14\./, "$clang_format is clang-format 14 (make indent installs it)")
  or BAIL_OUT("no $clang_format: install it (apt-get install clang-format-14, or make indent)");
ok(-f "$root/.clang-format", 'the repository has its .clang-format');

# formats with the repository's .clang-format whatever the working directory
sub formatted
{
	my ($path) = @_;
	my $out = `cd '$root' && '$clang_format' --style=file '$path'`;
	die "$clang_format failed on $path" if $? != 0;
	return $out;
}

my @files = map { s{^\Q$root\E/}{}r } sort glob("$root/src/*.c $root/src/*.h");
cmp_ok(scalar(@files), '>=', 20, 'src/ has the extension\'s files');
for my $file (@files)
{
	my $text = do { local (@ARGV, $/) = ("$root/$file"); <> };
	my $after = formatted($file);
	next if is($after eq $text ? 'unchanged' : 'changed', 'unchanged', "$file is as make indent leaves it");
	my $dir = tempdir(CLEANUP => 1);
	open my $fh, '>', "$dir/formatted" or die $!;
	print $fh $after;
	close $fh;
	diag(scalar `diff -u '$root/$file' '$dir/formatted' | head -n 40`);
}

# The check can fail: a file laid out otherwise is changed by the formatter.
{
	my $dir = tempdir(CLEANUP => 1);
	system('cp', "$root/.clang-format", "$dir/.clang-format") == 0 or die 'cp failed';
	open my $fh, '>', "$dir/sample.c" or die $!;
	print $fh "static int f(int x) { return x+1; }\n";
	close $fh;
	my $out = `cd '$dir' && '$clang_format' --style=file sample.c`;
	is($out, "static int\nf(int x)\n{\n\treturn x + 1;\n}\n",
		'the formatter lays out a sample as PostgreSQL does (return type alone, BSD braces, tabs)');
}

done_testing();
