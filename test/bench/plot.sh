#!/usr/bin/env bash
# test/bench/plot.sh BENCH.TSV OUT.PNG: draws what make bench measured (see
# run_bench.sh for the TSV) with gnuplot: checkouts/s of the extension and the
# floor against clients, over many skus, on one hot sku and on it striped,
# with synchronous_commit off and on; their ratios; the latency of each API
# call; checkout_status against a primary-key SELECT.
set -euo pipefail
tsv=${1:?usage: plot.sh BENCH.TSV OUT.PNG}
png=${2:?usage: plot.sh BENCH.TSV OUT.PNG}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# one data file per series, rows sorted by clients
modes="many hot striped striped-many many-sync hot-sync striped-sync striped-sync-many"
for mode in $modes; do
	for side in api floor; do
		# clients, checkouts/s, then p50 and p99 of each of the four calls
		awk -F '\t' -v m=$mode -v s=$side '$1 == "checkout" && $2 == m && $3 == s {
			for (i = 4; i <= 13; i++) printf "%s%s", $i, i < 13 ? " " : "\n" }' "$tsv" | sort -n >"$dir/$mode-$side"
	done
	awk 'NR == FNR { floor[$1] = $2; next } floor[$1] > 0 { print $1, $2 / floor[$1] }' \
		"$dir/$mode-floor" "$dir/$mode-api" >"$dir/$mode-ratio"
done
for side in api pk; do
	awk -F '\t' -v s=$side '$1 == "status" && $3 == s { print $4, $5, $6, $7 }' "$tsv" | sort -n >"$dir/status-$side"
done
# an invisible point in every panel: a run that left a panel's series empty
# (BENCH_SYNC=off, BENCH_STRIPED_CLIENTS=" ") draws empty axes, not a gnuplot error
echo "1 1" >"$dir/anchor"
# the ratio panel shows 0..1.2, or up to the highest ratio and its label
ratio_top=$(cat "$dir"/*-ratio | awk 'BEGIN { m = 1.2 } $2 + 0.15 > m { m = $2 + 0.15 } END { printf "%.1f", m + 0.049 }')
title=$(sed -n '1s/^# //p' "$tsv")
subtitle=$(sed -n '2s/^# //p' "$tsv")

gnuplot <<GP
set terminal pngcairo size 1500,1500 font "DejaVu Sans,10" noenhanced
set output "$png"
set multiplot layout 3,2 title "$title\n$subtitle" font ",12"
set logscale x 2
set xtics (1, 2, 4, 8, 16, 32)
set xrange [0.8:40]
set xlabel "clients"
set grid
set key top left
set style line 1 lc rgb "#1f77b4" lw 2 pt 7
set style line 2 lc rgb "#7f7f7f" lw 2 pt 5
set style line 3 lc rgb "#d62728" lw 2 pt 9
set style line 4 lc rgb "#2ca02c" lw 2 pt 11
set style line 5 lc rgb "#9467bd" lw 2 pt 13
set style line 6 lc rgb "#ff7f0e" lw 2 pt 7

set ylabel "checkouts/s"
set yrange [0:*]
set title "whole checkouts/s, synchronous_commit off (4 calls, each its own transaction)"
plot "$dir/anchor" using 1:2 with dots lc rgb "white" notitle, \
     "$dir/many-floor" using 1:2 with linespoints ls 2 title "floor, many skus", \
     "$dir/many-api" using 1:2 with linespoints ls 1 title "extension, many skus", \
     "$dir/hot-floor" using 1:2 with linespoints ls 2 dt 2 title "floor, one hot sku", \
     "$dir/hot-api" using 1:2 with linespoints ls 6 title "extension, one hot sku", \
     "$dir/striped-api" using 1:2 with linespoints ls 4 title "extension, hot sku striped", \
     "$dir/striped-many-api" using 1:2 with points ls 1 pt 4 ps 2 title "extension, many skus, in the striped runs' turns"
set title "whole checkouts/s, synchronous_commit on"
plot "$dir/anchor" using 1:2 with dots lc rgb "white" notitle, \
     "$dir/many-sync-floor" using 1:2 with linespoints ls 2 title "floor, many skus", \
     "$dir/many-sync-api" using 1:2 with linespoints ls 1 title "extension, many skus", \
     "$dir/hot-sync-floor" using 1:2 with linespoints ls 2 dt 2 title "floor, one hot sku", \
     "$dir/hot-sync-api" using 1:2 with linespoints ls 6 title "extension, one hot sku", \
     "$dir/striped-sync-api" using 1:2 with linespoints ls 4 title "extension, hot sku striped", \
     "$dir/striped-sync-many-api" using 1:2 with points ls 1 pt 4 ps 2 title "extension, many skus, in the striped runs' turns"

set logscale y
set yrange [*:*]
set ylabel "ms"
set title "extension: latency per call, many skus (p50 solid, p99 dashed)"
plot "$dir/anchor" using 1:2 with dots lc rgb "white" notitle, \
     for [i=0:3] "$dir/many-api" using 1:(column(3 + 2 * i)) with linespoints ls (3 + i) \
       title word("start advance-to-price_lock authorise capture-to-stock_commit", i + 1), \
     for [i=0:3] "$dir/many-api" using 1:(column(4 + 2 * i)) with lines ls (3 + i) dt 2 notitle
set title "extension: latency per call, hot sku striped, synchronous_commit on (p50 solid, p99 dashed)"
plot "$dir/anchor" using 1:2 with dots lc rgb "white" notitle, \
     for [i=0:3] "$dir/striped-sync-api" using 1:(column(3 + 2 * i)) with linespoints ls (3 + i) \
       title word("start advance-to-price_lock authorise capture-to-stock_commit", i + 1), \
     for [i=0:3] "$dir/striped-sync-api" using 1:(column(4 + 2 * i)) with lines ls (3 + i) dt 2 notitle

unset logscale y
set ylabel "extension / floor"
set yrange [0:$ratio_top]
set title "throughput ratio, extension / DML floor (striped: / the floor on the hot sku)"
plot 1.0 with lines lc rgb "#d62728" lw 1.5 dt 2 title "1.0", \
     "$dir/many-ratio" using 1:2 with linespoints ls 1 title "many skus, sync off", \
     "$dir/many-ratio" using 1:2:(sprintf("%.2f", \$2)) with labels offset 0,1 tc rgb "#1f77b4" notitle, \
     "$dir/hot-ratio" using 1:2 with linespoints ls 6 title "one hot sku, sync off", \
     "$dir/many-sync-ratio" using 1:2 with linespoints ls 1 dt 2 title "many skus, sync on", \
     "$dir/hot-sync-ratio" using 1:2 with linespoints ls 6 dt 2 title "one hot sku, sync on", \
     "$dir/striped-sync-ratio" using 1:2 with linespoints ls 4 title "hot sku striped, sync on", \
     "$dir/striped-sync-ratio" using 1:2:(sprintf("%.2f", \$2)) with labels offset 0,1 tc rgb "#2ca02c" notitle

set logscale y
set yrange [*:*]
set ylabel "ms"
set title "checkout_status vs primary-key SELECT of the lock row (p50 solid, p99 dashed)"
plot "$dir/anchor" using 1:2 with dots lc rgb "white" notitle, \
     "$dir/status-pk" using 1:3 with linespoints ls 2 title "SELECT by primary key", \
     "$dir/status-pk" using 1:4 with lines ls 2 dt 2 notitle, \
     "$dir/status-api" using 1:3 with linespoints ls 1 title "checkout_status", \
     "$dir/status-api" using 1:4 with lines ls 1 dt 2 notitle
unset multiplot
GP
